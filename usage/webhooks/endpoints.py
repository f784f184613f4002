"""Webhook endpoints and their delivery log as the admin, the portal and the admin API see them
(SPEC sections 13 and 14): create (secret shown once), change (rotation: the old secret signs
for 24 h), show, redeliver. Every URL passes the SSRF guard (``usage.webhooks.guard``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from licenses.clock import rfc3339
from licenses.events import EVENT_TYPES
from licenses.models import Organization, WebhookEndpoint, new_webhook_secret
from usage.webhooks.delivery import MAX_ATTEMPTS
from usage.webhooks.guard import url_problem
from usage.webhooks.models import WebhookDelivery

SECRET_OVERLAP = timedelta(hours=24)


class WebhookError(ValueError):
    """An endpoint that cannot be saved: ``fields`` maps a field to its reason."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


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
