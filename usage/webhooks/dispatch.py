"""The periodic step of webhooks (SPEC section 14): one ``devices.refused`` event per project,
item and rule and 10-minute window, the fan-out of the outbox to deliveries, then the due
attempts (``run_webhooks``, Celery task ``usage.deliver_webhooks`` every 10 s)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min

from devices.models import Decision
from licenses.clock import rfc3339
from licenses.events import emit
from licenses.models import OutboxEvent, WebhookEndpoint
from usage.models import JobState
from usage.webhooks.delivery import deliver_due
from usage.webhooks.models import WebhookDelivery

REFUSED_WINDOW_S = 600  # devices.refused: at most one per project, item and rule per 10 minutes
REFUSED_MARGIN = timedelta(seconds=30)  # decisions commit a moment after their created_at
REFUSED_JOB = "webhook_devices_refused"


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
