from datetime import timedelta

import pytest
from django.test import override_settings

from devices.models import Decision
from licenses.clock import slot_start_of
from tests import factories
from usage import jobs
from usage.models import ConcurrencyRollup, SightingMemory, SlotDevice, UsageCount, UsageReport, UsageRollup

pytestmark = pytest.mark.django_db


def memory(device, updated_at):
    return SightingMemory.objects.create(
        device=device, key=f"k{updated_at.timestamp()}", last_ts_ms=1, updated_at=updated_at
    )


def decision(item, created_at):
    return Decision.objects.create(
        project=item.project,
        device_uuid="d",
        item=item,
        endpoint="authorize",
        allowed=True,
        rule="r",
        created_at=created_at,
    )


@override_settings(REPORT_RETENTION_DAYS=400)
def test_it_purges_what_is_past_retention_and_keeps_what_is_within(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5, dedup_interval_ms=3000)
    dev = factories.DeviceFactory(item=item)
    cutoff = now - timedelta(days=400)
    old = factories.UsageReportFactory(
        device=dev,
        slot_start=slot_start_of(cutoff) - timedelta(minutes=3),
        received_at=cutoff - timedelta(microseconds=1),
        counted={"barcode_scans": 1},
    )
    edge = factories.UsageReportFactory(
        device=dev,
        slot_start=slot_start_of(cutoff) + timedelta(minutes=3),
        received_at=cutoff,
        counted={"barcode_scans": 2},
    )
    ConcurrencyRollup.objects.create(item=item, slot_start=old.slot_start, active_devices=1, limit=5, overuse_devices=0)
    UsageRollup.objects.create(
        item=item, granularity="day", bucket_start=old.slot_start, metric="barcode_scans", count=1
    )
    # Dedup memory: the longest interval (3 s) plus 31 days.
    memory_cutoff = now - timedelta(days=31, seconds=3)
    memory(dev, memory_cutoff - timedelta(seconds=1))
    kept_memory = memory(dev, memory_cutoff)
    decision(item, cutoff - timedelta(seconds=1))
    kept_decision = decision(item, cutoff)

    summary = jobs.purge_old_data(now=now)

    assert list(UsageReport.objects.values_list("pk", flat=True)) == [edge.pk]
    assert list(UsageCount.objects.values_list("report_id", flat=True)) == [edge.pk]
    assert list(SlotDevice.objects.values_list("slot_start", flat=True)) == [edge.slot_start]
    assert list(SightingMemory.objects.values_list("pk", flat=True)) == [kept_memory.pk]
    assert list(Decision.objects.values_list("pk", flat=True)) == [kept_decision.pk]
    # Rollups are the history: never purged.
    assert ConcurrencyRollup.objects.count() == 1 and UsageRollup.objects.count() == 1
    assert summary == {
        "job": "purge_old_data",
        # PostgreSQL: no month ends before the cutoff (the reports are in the default partition).
        "partitions_created": 0,
        "rows_moved": 0,
        "partitions_dropped": 0,
        "partitions_waiting": 0,
        "usagereport": 1,
        "usagecount": 1,
        "slotdevice": 1,
        "sightingmemory": 1,
        "decision": 1,
    }
    assert jobs.purge_old_data(now=now) == {**summary, **{k: 0 for k in summary if k != "job"}}


def test_it_deletes_in_batches_by_primary_key(now):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    dev = factories.DeviceFactory(item=item)
    old = now - timedelta(days=500)
    for i in range(7):
        factories.UsageReportFactory(
            device=dev,
            slot_start=slot_start_of(old),
            received_at=old + timedelta(seconds=i),
            counted={"barcode_scans": 1},
        )
    keep = factories.UsageReportFactory(
        device=dev, slot_start=slot_start_of(now), received_at=now, counted={"barcode_scans": 1}
    )

    summary = jobs.purge_old_data(now=now, batch=3)

    assert summary["usagereport"] == 7 and summary["usagecount"] == 7
    assert list(UsageReport.objects.values_list("pk", flat=True)) == [keep.pk]


@override_settings(REPORT_RETENTION_DAYS=30)
def test_retention_comes_from_settings(now):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    # Two months back: on PostgreSQL a month no partition holds (the default partition's rows
    # go one by one; a month's partition goes whole, test_usage_partitions.py).
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=slot_start_of(now - timedelta(days=62)),
        received_at=now - timedelta(days=61),
        counted={"barcode_scans": 1},
    )
    assert jobs.purge_old_data(now=now)["usagereport"] == 1
