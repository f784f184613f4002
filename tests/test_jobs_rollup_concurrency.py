from datetime import timedelta

import pytest

from tests import factories
from tests import factories_jobs as fj
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
    item = factories.item(option="per_concurrent_device", quantity=2)
    s0 = fj.slot(now) - 2 * S
    devices = [fj.device(item) for _ in range(3)]
    for d in devices:
        fj.report(d, slot_start=s0, counts={"barcode_scans": 1})
    fj.report(devices[0], slot_start=s0, counts={"barcode_scans": 2})  # a second report, same device
    SlotDevice.objects.filter(device=devices[2]).update(overuse=True)
    fj.report(devices[1], slot_start=s0 + S, counts={"barcode_scans": 1})

    summary = jobs.rollup_concurrency(now=fj.slot(now))

    assert summary["slots_rolled"] == 2
    assert rollups(item) == [(s0, 3, 2, 1), (s0 + S, 1, 2, 0)]


def test_it_does_not_roll_a_slot_still_open_and_rolls_it_once_closed(now):
    item = factories.item(option="per_concurrent_device", quantity=5)
    open_slot = fj.slot(now)
    d = fj.device(item)
    fj.report(d, slot_start=open_slot, received_at=open_slot + timedelta(seconds=10), counts={"barcode_scans": 1})

    jobs.rollup_concurrency(now=open_slot + S - timedelta(microseconds=1))
    assert rollups(item) == []

    # Another device reports into it just before it closes, after the first run.
    d2 = fj.device(item)
    fj.report(d2, slot_start=open_slot, received_at=open_slot + timedelta(seconds=179), counts={"barcode_scans": 1})
    # The next run comes long after the margin: the held watermark still finds the slot.
    jobs.rollup_concurrency(now=open_slot + S + timedelta(minutes=30))
    assert rollups(item) == [(open_slot, 2, 5, 0)]


def test_it_rolls_a_slot_at_the_instant_it_closes(now):
    item = factories.item(option="per_concurrent_device", quantity=5)
    s = fj.slot(now)
    fj.report(fj.device(item), slot_start=s, received_at=s + timedelta(seconds=5), counts={"barcode_scans": 1})

    jobs.rollup_concurrency(now=s + S)
    assert rollups(item) == [(s, 1, 5, 0)]


def test_a_late_report_re_rolls_its_slot(now):
    item = factories.item(option="per_concurrent_device", quantity=5)
    old = fj.slot(now) - 20 * S
    fj.report(fj.device(item), slot_start=old, received_at=old + timedelta(seconds=60), counts={"barcode_scans": 1})
    jobs.rollup_concurrency(now=old + 2 * S)
    assert rollups(item) == [(old, 1, 5, 0)]

    # An hour later a device that was offline sends its buffered report for that old slot.
    fj.report(fj.device(item), slot_start=old, received_at=now - timedelta(seconds=30), counts={"barcode_scans": 1})
    summary = jobs.rollup_concurrency(now=now)

    assert summary["slots_rolled"] == 1  # only that slot is recomputed
    assert rollups(item) == [(old, 2, 5, 0)]


def test_a_report_received_just_before_the_last_run_but_committed_after_it_is_still_rolled(now):
    item = factories.item(option="per_concurrent_device", quantity=5)
    s = fj.slot(now) - 10 * S
    fj.report(fj.device(item), slot_start=s, received_at=now - timedelta(minutes=3), counts={"barcode_scans": 1})
    jobs.rollup_concurrency(now=now)
    # received_at was read before that run, the transaction committed after it.
    fj.report(fj.device(item), slot_start=s, received_at=now - timedelta(seconds=1), counts={"barcode_scans": 1})

    jobs.rollup_concurrency(now=now + timedelta(minutes=3))
    assert rollups(item) == [(s, 2, 5, 0)]


def test_it_ignores_zero_count_reports_and_other_options(now):
    concurrent = factories.item(option="per_concurrent_device", quantity=5)
    seats = factories.item(option="per_client_device")
    s = fj.slot(now) - 3 * S
    fj.report(fj.device(concurrent), slot_start=s, counts={})  # heartbeat: not active in the slot
    fj.report(fj.device(seats), slot_start=s, counts={"barcode_scans": 3})

    jobs.rollup_concurrency(now=now)
    assert ConcurrencyRollup.objects.count() == 0


def test_running_twice_gives_the_same_rollups(now):
    item = factories.item(option="per_concurrent_device", quantity=1)
    s = fj.slot(now) - 5 * S
    for _ in range(2):
        fj.report(fj.device(item), slot_start=s, counts={"pages_core": 1})

    jobs.rollup_concurrency(now=now)
    first = rollups(item)
    jobs.rollup_concurrency(now=now)
    assert rollups(item) == first == [(s, 2, 1, 0)]


def test_a_replay_in_the_future_does_not_hide_reports_received_afterwards(now):
    item = factories.item(option="per_concurrent_device", quantity=5)
    jobs.rollup_concurrency(now=now + timedelta(days=1))  # run_job --now tomorrow
    assert JobState.objects.get(name="rollup_concurrency").watermark == now + timedelta(days=1)

    s = fj.slot(now) - 2 * S
    fj.report(fj.device(item), slot_start=s, received_at=now - timedelta(seconds=10), counts={"barcode_scans": 1})
    jobs.rollup_concurrency(now=now)
    assert rollups(item) == [(s, 1, 5, 0)]
