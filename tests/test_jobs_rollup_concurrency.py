from datetime import timedelta

import pytest

from licenses.clock import slot_start_of
from tests import factories
from usage import jobs
from usage.models import ConcurrencyRollup, JobState, SlotDevice

pytestmark = pytest.mark.django_db

S = timedelta(seconds=180)


def rollups(item):
    return list(
        ConcurrencyRollup.objects.filter(item=item)
        .order_by("slot_start")
        .values_list("slot_start", "active_devices", "limit", "overuse_devices")
    )


def test_it_counts_distinct_active_devices_per_closed_slot_with_limit_and_overuse(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=2)
    s0 = slot_start_of(now) - 2 * S
    devices = [factories.DeviceFactory(item=item) for _ in range(3)]
    for d in devices:
        factories.UsageReportFactory(device=d, slot_start=s0, counted={"barcode_scans": 1})
    factories.UsageReportFactory(
        device=devices[0], slot_start=s0, counted={"barcode_scans": 2}
    )  # a second report, same device
    SlotDevice.objects.filter(device=devices[2]).update(overuse=True)
    factories.UsageReportFactory(device=devices[1], slot_start=s0 + S, counted={"barcode_scans": 1})

    summary = jobs.rollup_concurrency(now=slot_start_of(now))

    assert summary["slots_rolled"] == 2
    assert rollups(item) == [(s0, 3, 2, 1), (s0 + S, 1, 2, 0)]


def test_it_does_not_roll_a_slot_still_open_and_rolls_it_once_closed(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    open_slot = slot_start_of(now)
    d = factories.DeviceFactory(item=item)
    factories.UsageReportFactory(
        device=d, slot_start=open_slot, received_at=open_slot + timedelta(seconds=10), counted={"barcode_scans": 1}
    )

    jobs.rollup_concurrency(now=open_slot + S - timedelta(microseconds=1))
    assert rollups(item) == []

    # Another device reports into it just before it closes, after the first run.
    d2 = factories.DeviceFactory(item=item)
    factories.UsageReportFactory(
        device=d2, slot_start=open_slot, received_at=open_slot + timedelta(seconds=179), counted={"barcode_scans": 1}
    )
    # The next run comes long after the margin: the held watermark still finds the slot.
    jobs.rollup_concurrency(now=open_slot + S + timedelta(minutes=30))
    assert rollups(item) == [(open_slot, 2, 5, 0)]


def test_it_rolls_a_slot_at_the_instant_it_closes(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    s = slot_start_of(now)
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=s,
        received_at=s + timedelta(seconds=5),
        counted={"barcode_scans": 1},
    )

    jobs.rollup_concurrency(now=s + S)
    assert rollups(item) == [(s, 1, 5, 0)]


def test_a_late_report_re_rolls_its_slot(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    old = slot_start_of(now) - 20 * S
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=old,
        received_at=old + timedelta(seconds=60),
        counted={"barcode_scans": 1},
    )
    jobs.rollup_concurrency(now=old + 2 * S)
    assert rollups(item) == [(old, 1, 5, 0)]

    # An hour later a device that was offline sends its buffered report for that old slot.
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=old,
        received_at=now - timedelta(seconds=30),
        counted={"barcode_scans": 1},
    )
    summary = jobs.rollup_concurrency(now=now)

    assert summary["slots_rolled"] == 1  # only that slot is recomputed
    assert rollups(item) == [(old, 2, 5, 0)]


def test_a_report_received_just_before_the_last_run_but_committed_after_it_is_still_rolled(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    s = slot_start_of(now) - 10 * S
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=s,
        received_at=now - timedelta(minutes=3),
        counted={"barcode_scans": 1},
    )
    jobs.rollup_concurrency(now=now)
    # received_at was read before that run, the transaction committed after it.
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=s,
        received_at=now - timedelta(seconds=1),
        counted={"barcode_scans": 1},
    )

    jobs.rollup_concurrency(now=now + timedelta(minutes=3))
    assert rollups(item) == [(s, 2, 5, 0)]


def test_it_ignores_zero_count_reports_and_other_options(now):
    concurrent = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    seats = factories.LicenseItemFactory(per_client_device=True)
    s = slot_start_of(now) - 3 * S
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=concurrent), slot_start=s, counted={}
    )  # heartbeat: not active in the slot
    factories.UsageReportFactory(device=factories.DeviceFactory(item=seats), slot_start=s, counted={"barcode_scans": 3})

    jobs.rollup_concurrency(now=now)
    assert ConcurrencyRollup.objects.count() == 0


def test_running_twice_gives_the_same_rollups(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=1)
    s = slot_start_of(now) - 5 * S
    for _ in range(2):
        factories.UsageReportFactory(device=factories.DeviceFactory(item=item), slot_start=s, counted={"pages_core": 1})

    jobs.rollup_concurrency(now=now)
    first = rollups(item)
    jobs.rollup_concurrency(now=now)
    assert rollups(item) == first == [(s, 2, 1, 0)]


def test_a_replay_in_the_future_does_not_hide_reports_received_afterwards(now):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    jobs.rollup_concurrency(now=now + timedelta(days=1))  # run_job --now tomorrow
    assert JobState.objects.get(name="rollup_concurrency").watermark == now + timedelta(days=1)

    s = slot_start_of(now) - 2 * S
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=s,
        received_at=now - timedelta(seconds=10),
        counted={"barcode_scans": 1},
    )
    jobs.rollup_concurrency(now=now)
    assert rollups(item) == [(s, 1, 5, 0)]
