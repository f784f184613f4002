"""Signed delivery of webhook events (SPEC section 14): the Standard Webhooks headers, claiming a
due delivery with a lease, one attempt through the SSRF guard, the backoff, the attempt log, and
disabling an endpoint after 5 days of failures with an email to staff."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from licenses.clock import rfc3339
from licenses.models import OutboxEvent, WebhookEndpoint
from usage.webhooks.guard import TIMEOUT_S, post, resolve_target
from usage.webhooks.models import WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

# Retries after the first attempt (SPEC 14: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
BACKOFF = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = 1 + len(BACKOFF)
LEASE = timedelta(seconds=60)  # longer than one attempt can take
DISABLE_AFTER = timedelta(days=5)
EXCERPT = 1024
_monotonic = time.monotonic  # latency of an attempt (a name of its own, for tests)


def payload_of(event: OutboxEvent) -> str:
    return json.dumps(
        {"type": event.type, "timestamp": rfc3339(event.occurred_at), "data": event.data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def signed_headers(endpoint: WebhookEndpoint, event_id: str, body: str, *, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers; one signature per secret still signing at ``at``."""
    at = at.astimezone(UTC)
    signatures = [Webhook(s).sign(event_id, at, body) for s in endpoint.signing_secrets(at)]
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "user-agent": "DLS-Admin-Webhooks/1",
    }


def claim(delivery_id: int, *, now: datetime) -> bool:
    """Take a due delivery for one attempt: a conditional UPDATE, so one worker wins."""
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.PENDING, attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(lease_until=now + LEASE)
    )


def due_ids(*, now: datetime, limit: int) -> list[int]:
    """Due deliveries of enabled endpoints, in order per endpoint (events in the order written)."""
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.PENDING, attempt_at__lte=now, endpoint__enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .order_by("endpoint_id", "event_id")
        .values_list("pk", flat=True)[:limit]
    )


def deliver_due(*, now: datetime, clock: Callable[[], datetime] | None = None, limit: int = 200) -> dict[str, int]:
    """Attempt every due delivery once. ``clock`` gives each attempt its signing time (default
    ``now``); the task passes the wall clock so a long run never signs with a stale timestamp."""
    clock = clock or (lambda: now)
    sent = failed = 0
    for delivery_id in due_ids(now=now, limit=limit):
        if not claim(delivery_id, now=now):
            continue  # another worker has it
        if attempt(delivery_id, now=now, at=clock()):
            sent += 1
        else:
            failed += 1
    return {"delivered": sent, "failed_attempts": failed}


def attempt(delivery_id: int, *, now: datetime, at: datetime | None = None) -> bool:
    """One attempt of a claimed delivery, signed at ``at`` (default ``now``); the next attempt
    is scheduled from ``now``. True on a 2xx. Logged whatever happens."""
    at = at or now
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    body = payload_of(event)
    status_code: int | None = None
    excerpt = error = ""
    started = _monotonic()
    # Resolved and checked once; the request connects to the checked addresses (guard.post).
    target = resolve_target(endpoint.url)
    if isinstance(target, str):
        error = f"url {target}"
    else:
        try:
            response = post(target, body, signed_headers(endpoint, event.event_id, body, at=at))
            status_code = response.status_code
            excerpt = response.content[:EXCERPT].decode("utf-8", "replace")[:EXCERPT]
        except httpx.TimeoutException:
            error = f"no answer within {TIMEOUT_S:.0f} s"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"[:255]
    latency_ms = int((_monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    if ok and latency_ms > TIMEOUT_S * 1000:  # httpx's timeout is per read: a slow drip can pass it
        ok, error = False, f"answered after {TIMEOUT_S:.0f} s"
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=at,
            status_code=status_code,
            latency_ms=latency_ms,
            response_excerpt=excerpt,
            error=error,
        )
        attempts = delivery.attempts + 1
        if ok:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=WebhookDelivery.SUCCEEDED,
                attempts=attempts,
                last_status_code=status_code,
                delivered_at=at,
                lease_until=None,
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
        else:
            final = attempts >= MAX_ATTEMPTS
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=WebhookDelivery.FAILED if final else WebhookDelivery.PENDING,
                attempts=attempts,
                last_status_code=status_code,
                attempt_at=now if final else now + BACKOFF[attempts - 1],
                lease_until=None,
            )
            _endpoint_failed(endpoint, now=now)
    return ok


def _endpoint_failed(endpoint: WebhookEndpoint, *, now: datetime) -> None:
    """Failing every delivery since ``failing_since``: 5 days of that disables the endpoint."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint.pk, enabled=True, failing_since__lte=now - DISABLE_AFTER
    ).update(enabled=False, disabled_reason=f"every delivery failed for 5 days (until {rfc3339(now)})")
    if disabled:
        transaction.on_commit(lambda: _email_staff_disabled(endpoint.pk))


def _email_staff_disabled(endpoint_id: int) -> None:
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    to = sorted(set(staff.values_list("email", flat=True))) or [str(admin[1]) for admin in settings.ADMINS]
    if not to:
        logger.warning("webhook endpoint %s disabled: no staff email", endpoint_id)
        return
    whose = f"organization {endpoint.organization_id}" if endpoint.organization_id else "staff"
    change_path = reverse("admin:licenses_webhookendpoint_change", args=[endpoint.pk])
    try:
        send_mail(
            f"Webhook endpoint disabled: {endpoint.url}",
            f"The webhook endpoint {endpoint.url} ({whose}, id {endpoint.pk}) failed every delivery for 5 days "
            f"and was disabled: {endpoint.disabled_reason}.\n\nFix the receiver, enable the endpoint again in the "
            f"admin ({settings.BASE_URL}{change_path}) and redeliver what it missed from its delivery log.\n",
            settings.DEFAULT_FROM_EMAIL,
            to,
        )
    except Exception:
        logger.exception("email about disabled webhook endpoint %s failed", endpoint_id)
