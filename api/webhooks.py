"""Webhook delivery (SPEC section 14): endpoints, the fan-out of ``licenses.OutboxEvent`` rows to
deliveries, signed delivery with retries, and the coalesced ``devices.refused`` events.

Deliveries follow the Standard Webhooks specification and are signed with its reference package
(``standardwebhooks``): ``webhook-id`` is the event id (the same on every retry),
``webhook-timestamp`` the attempt's Unix seconds, ``webhook-signature`` one ``v1,<base64>`` per
secret (two for 24 h after a rotation). A worker claims a delivery by setting ``lease_until``;
a worker killed mid-delivery leaves the lease to lapse and the next run picks it again, so every
event is delivered at least once (receivers deduplicate by ``webhook-id``).

Services take ``now`` (``deliver_due`` also a ``clock`` for the signing time of each attempt);
the Celery tasks in ``api.tasks`` read the clock."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from standardwebhooks.webhooks import Webhook

from api.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, new_webhook_secret
from devices.models import Decision
from licenses.clock import rfc3339
from licenses.events import EVENT_TYPES, emit
from licenses.models import Organization, OutboxEvent
from usage.models import JobState

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
TIMEOUT_S = 10.0  # a 2xx within 10 s succeeds
LEASE = timedelta(seconds=60)  # longer than one attempt can take
DISABLE_AFTER = timedelta(days=5)
SECRET_OVERLAP = timedelta(hours=24)
EXCERPT = 1024
REFUSED_WINDOW_S = 600  # devices.refused: at most one per project, item and rule per 10 minutes
REFUSED_MARGIN = timedelta(seconds=30)  # decisions commit a moment after their created_at
REFUSED_JOB = "webhook_devices_refused"
_monotonic = time.monotonic  # latency of an attempt (a name of its own, for tests)


class WebhookError(ValueError):
    """An endpoint that cannot be saved: ``fields`` maps a field to its reason."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


# --- the SSRF guard ----------------------------------------------------------------------------


def allow_private_hosts() -> bool:
    value = getattr(settings, "WEBHOOK_ALLOW_PRIVATE_HOSTS", None)
    if value is None:
        import os

        value = os.environ.get("WEBHOOK_ALLOW_PRIVATE_HOSTS", "0")
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def url_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why ``url`` may not be an endpoint, or None: ``https`` in production (``http`` also
    elsewhere); no host that resolves to a loopback, private or link-local address unless
    ``WEBHOOK_ALLOW_PRIVATE_HOSTS=1``. Checked when an endpoint is saved and before each attempt
    (a name may resolve elsewhere later); redirects are never followed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    allowed = ("https",) if getattr(settings, "PRODUCTION", False) else ("https", "http")
    if parts.scheme not in allowed:
        return "must be an https URL" if allowed == ("https",) else "must be an http or https URL"
    host = parts.hostname
    if not host:
        return "has no host"
    if parts.username or parts.password:
        return "may not carry a user name or password"
    if allow_private_hosts() or not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return f"host {host} does not resolve"
    for info in infos:
        if _blocked(str(info[4][0])):
            return f"host {host} resolves to a loopback, private or link-local address"
    return None


# --- endpoints ---------------------------------------------------------------------------------


def _clean_events(events: list[str] | None) -> list[str]:
    if events is None:
        return []
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise WebhookError({"events": f"unknown event type {unknown[0]!r}: one of {', '.join(EVENT_TYPES)}"})
    return sorted(set(events), key=EVENT_TYPES.index)


def create_endpoint(
    *, url: str, events: list[str] | None, organization: Organization | None, created_by_name: str, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (shown once). ``events`` None or empty: every type."""
    events = _clean_events(events)
    problem = url_problem(url)
    if problem:
        raise WebhookError({"url": problem})
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        events=events,
        organization=organization,
        created_by_name=created_by_name[:150],
        created_at=now,
    )
    return endpoint, endpoint.secret


def update_endpoint(
    endpoint: WebhookEndpoint,
    *,
    now: datetime,
    url: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
    rotate_secret: bool = False,
) -> str | None:
    """Change an endpoint; the new secret when ``rotate_secret`` (the old one signs for 24 h)."""
    fields: list[str] = []
    if url is not None:
        problem = url_problem(url)
        if problem:
            raise WebhookError({"url": problem})
        endpoint.url = url
        fields.append("url")
    if events is not None:
        endpoint.events = _clean_events(events)
        fields.append("events")
    if enabled is not None:
        endpoint.enabled = enabled
        fields.append("enabled")
        if enabled:
            endpoint.disabled_reason, endpoint.failing_since = "", None
            fields += ["disabled_reason", "failing_since"]
    secret = None
    if rotate_secret:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + SECRET_OVERLAP
        endpoint.secret = secret = new_webhook_secret()
        fields += ["secret", "previous_secret", "previous_secret_expires_at"]
    if fields:
        endpoint.save(update_fields=fields)
    return secret


def endpoint_data(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "events": list(endpoint.events) or list(EVENT_TYPES),
        "organization": endpoint.organization_id,
        "enabled": endpoint.enabled,
    }
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_data(delivery: WebhookDelivery) -> dict[str, Any]:
    attempts = list(delivery.attempt_log.all()[: MAX_ATTEMPTS * 2])
    return {
        "id": str(delivery.pk),
        "event_id": delivery.event.event_id,
        "type": delivery.event.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": rfc3339(delivery.attempt_at) if delivery.status == WebhookDelivery.PENDING else None,
        "last_status_code": delivery.last_status_code,
        "created_at": rfc3339(delivery.created_at),
        "delivered_at": rfc3339(delivery.delivered_at) if delivery.delivered_at else None,
        "attempt_log": [
            {
                "attempted_at": rfc3339(a.attempted_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "response": a.response_excerpt,
                "error": a.error,
            }
            for a in attempts
        ],
    }


def redeliver(delivery: WebhookDelivery, *, now: datetime) -> WebhookDelivery:
    """Deliver again, now, with a fresh series of retries (the attempt log is kept)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.PENDING, attempts=0, attempt_at=now, lease_until=None
    )
    delivery.refresh_from_db()
    return delivery


# --- fan-out -----------------------------------------------------------------------------------


def dispatch_events(*, now: datetime, batch: int = 500) -> int:
    """Give each undispatched event one delivery per enabled endpoint that subscribes to its type
    and may see its organization. Events are claimed row by row (``SKIP LOCKED`` on PostgreSQL)
    so that two workers never fan out one event twice; the unique (endpoint, event) pair makes a
    repeat harmless anyway."""
    dispatched = 0
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True)
            .order_by("id")[:batch]
        )
        if not events:
            return 0
        endpoints = list(WebhookEndpoint.objects.filter(enabled=True))
        deliveries = [
            WebhookDelivery(endpoint=ep, event=ev, attempt_at=now, created_at=now)
            for ev in events
            for ep in endpoints
            if ep.subscribes_to(ev.type) and (ep.organization_id is None or ep.organization_id == ev.organization_id)
        ]
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        dispatched = OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
    return dispatched


# --- delivery ----------------------------------------------------------------------------------


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


def post(url: str, body: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        return client.post(url, content=body.encode("utf-8"), headers=headers)


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
    problem = url_problem(endpoint.url)
    if problem:
        error = f"url {problem}"
    else:
        try:
            response = post(endpoint.url, body, signed_headers(endpoint, event.event_id, body, at=at))
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
    try:
        send_mail(
            f"Webhook endpoint disabled: {endpoint.url}",
            f"The webhook endpoint {endpoint.url} ({whose}, id {endpoint.pk}) failed every delivery for 5 days "
            f"and was disabled: {endpoint.disabled_reason}.\n\nFix the receiver, enable the endpoint again in the "
            f"admin ({settings.BASE_URL}/admin/api/webhookendpoint/{endpoint.pk}/change/) and redeliver what it "
            "missed from its delivery log.\n",
            settings.DEFAULT_FROM_EMAIL,
            to,
        )
    except Exception:
        logger.exception("email about disabled webhook endpoint %s failed", endpoint_id)


# --- devices.refused ---------------------------------------------------------------------------


def flush_refused_events(*, now: datetime, catch_up: timedelta = timedelta(hours=24)) -> int:
    """One ``devices.refused`` event per project, item and rule for each closed 10-minute window,
    read from the decisions the device API records anyway (so a refusal costs the hot path no
    statement more). A watermark (``JobState``) makes a second run, or two at once, emit nothing
    more; a run after a pause catches up at most ``catch_up``."""
    with transaction.atomic():
        JobState.objects.bulk_create([JobState(name=REFUSED_JOB)], ignore_conflicts=True)
        state = JobState.objects.select_for_update().get(name=REFUSED_JOB)
        closed = now - REFUSED_MARGIN
        end = datetime.fromtimestamp(int(closed.timestamp()) // REFUSED_WINDOW_S * REFUSED_WINDOW_S, UTC)
        window = timedelta(seconds=REFUSED_WINDOW_S)
        start = state.watermark or end - window
        start = max(start, end - catch_up)
        emitted = 0
        refused = Decision.objects.filter(allowed=False, created_at__gte=start, created_at__lt=end)
        if start < end and refused.exists():  # most runs: one cheap query on created_at
            while start < end:
                emitted += _emit_refusals(start, start + window)
                start += window
        if state.watermark is None or end > state.watermark:
            JobState.objects.filter(pk=state.pk).update(watermark=end)
    return emitted


def _emit_refusals(start: datetime, end: datetime) -> int:
    rows = (
        Decision.objects.filter(allowed=False, created_at__gte=start, created_at__lt=end)
        .values("project_id", "project__name", "project__organization_id", "item_id", "rule")
        .annotate(
            n=Count("id"), first=Min("created_at"), last=Max("created_at"), sample=Min("device_uuid"), code=Min("code")
        )
        .order_by("project_id", "item_id", "rule")
    )
    n = 0
    for row in rows:
        emit(
            "devices.refused",
            {
                "organization": row["project__organization_id"],
                "project": {"id": str(row["project_id"]), "name": row["project__name"]},
                "item": None if row["item_id"] is None else str(row["item_id"]),
                "rule": row["rule"],
                "code": row["code"],
                "count": row["n"],
                "first_refused_at": rfc3339(row["first"]),
                "last_refused_at": rfc3339(row["last"]),
                "sample_device_uuid": row["sample"],
                "window_start": rfc3339(start),
                "window_end": rfc3339(end),
            },
            organization=row["project__organization_id"],
            now=end,
        )
        n += 1
    return n


def run_webhooks(*, now: datetime, clock: Callable[[], datetime] | None = None) -> dict[str, int]:
    """The periodic step: coalesce refusals, fan out new events, attempt due deliveries."""
    refused = flush_refused_events(now=now)
    dispatched = dispatch_events(now=now)
    return {"refused_events": refused, "dispatched": dispatched, **deliver_due(now=now, clock=clock)}
