"""Factories for the jobs' tests: devices, usage reports with their counts, slot activity and
quota counters, created directly in the tables the device API fills."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from devices.models import Device
from licenses.models import LicenseItem
from tests import factories
from usage.models import QuotaCounter, SlotDevice, UsageCount, UsageReport

_seq = itertools.count(1)


def slot(dt: datetime) -> datetime:
    """The start of the 3-minute slot holding ``dt``."""
    epoch = int(dt.timestamp())
    return datetime.fromtimestamp(epoch - epoch % 180, tz=dt.tzinfo)


def device(item: LicenseItem, *, state: str = Device.ACTIVE, active_until: datetime | None = None, **fields) -> Device:
    now = fields.pop("now", factories.NOW)
    fields.setdefault("client_type", "server" if item.option == "per_server" else "desktop")
    return Device.objects.create(
        project=item.project,
        item=item,
        device_uuid=fields.pop("device_uuid", f"dev-{next(_seq)}"),
        state=state,
        first_authorized_at=fields.pop("first_authorized_at", now - timedelta(days=1)),
        authorized_at=fields.pop("authorized_at", now - timedelta(days=1)),
        last_seen_at=fields.pop("last_seen_at", now),
        active_until=active_until or now + timedelta(days=1),
        **fields,
    )


def report(
    dev: Device,
    *,
    slot_start: datetime,
    received_at: datetime | None = None,
    counts: dict[str, int] | None = None,
    item: LicenseItem | None = None,
    concurrent: bool | None = None,
) -> UsageReport:
    """A recorded usage report with one UsageCount per metric; for a concurrent item with a
    non-zero count also the device's SlotDevice row (as the API records it)."""
    item = item or dev.item
    counts = counts or {}
    r = UsageReport.objects.create(
        device=dev,
        report_id=f"r-{next(_seq)}",
        item=item,
        slot_start=slot_start,
        body_hash="0" * 64,
        counted=counts,
        allowed=True,
        response={"status": "accepted"},
        received_at=received_at or slot_start + timedelta(seconds=170),
    )
    UsageCount.objects.bulk_create(
        [UsageCount(report=r, item=item, slot_start=slot_start, metric=m, count=n) for m, n in counts.items() if n]
    )
    if concurrent is None:
        concurrent = item.option == "per_concurrent_device" and any(counts.values())
    if concurrent:
        SlotDevice.objects.get_or_create(item=item, slot_start=slot_start, device=dev)
    return r


def counter(item: LicenseItem, metric: str, used: int) -> QuotaCounter:
    c, _ = QuotaCounter.objects.update_or_create(item=item, metric=metric, defaults={"used": used})
    return c
