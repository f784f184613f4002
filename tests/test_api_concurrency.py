"""per_concurrent_device (SPEC section 4): devices count per slot once they report a non-zero
count; above the quantity the overuse allowance admits up to the ceiling while the budget lasts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Decision, Device
from devices.signing import verify_local_license
from tests import factories
from tests.factories import NOW, SLOT, authorize, move_clock, report
from tests.quota import quota_used
from usage.models import SlotDevice, UsageReport

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def concurrent_item(**fields):
    return factories.LicenseItemFactory(per_concurrent_device=True, product="dlr", **fields)


def devices(client, item, n: int) -> list[str]:
    uuids = [f"c{i}" for i in range(n)]
    for uuid in uuids:
        assert authorize(client, item.project, uuid, product="dlr").status_code == 200
    return uuids


def allowed(client, item, uuids, report_id="r", slot=SLOT, **counts) -> list[bool]:
    counts = counts or {"barcode_scans": 1}
    return [report(client, item.project, u, report_id, slot, **counts).json()["allowed"] for u in uuids]


def test_any_number_of_devices_may_be_authorized(client):
    item = concurrent_item(quantity=2)
    devices(client, item, 10)
    assert Device.objects.filter(item=item, state="active").count() == 10


def test_a_slot_admits_the_quantity_then_the_overuse_ceiling(client):
    item = concurrent_item(quantity=10, overuse_percent=10)  # ceiling 11
    uuids = devices(client, item, 13)
    assert allowed(client, item, uuids) == [True] * 11 + [False, False]
    assert SlotDevice.objects.filter(slot_start=SLOT).count() == 11
    assert SlotDevice.objects.filter(slot_start=SLOT, overuse=True).count() == 1
    assert quota_used(item, "overuse_spent") == 1
    refused = report(client, item.project, "c12", "again", barcode_scans=2).json()
    assert refused["error"]["code"] == 120 and "ceiling 11" in refused["error"]["message"]
    assert UsageReport.objects.filter(device__device_uuid="c12").count() == 2  # recorded anyway


def test_a_device_counts_once_per_slot(client):
    item = concurrent_item(quantity=1, overuse_percent=0)
    uuids = devices(client, item, 2)
    assert allowed(client, item, uuids[:1], "a") == [True]
    assert allowed(client, item, uuids[:1], "b") == [True]  # the same device again in the slot
    assert allowed(client, item, uuids[1:], "a") == [False]
    # The next slot is a fresh count.
    move_clock(NOW + timedelta(minutes=3))
    assert allowed(client, item, uuids[1:], "b", slot=SLOT + timedelta(minutes=3)) == [True]


def test_a_zero_count_report_does_not_make_a_device_active(client):
    item = concurrent_item(quantity=1, overuse_percent=0)
    uuids = devices(client, item, 2)
    assert allowed(client, item, uuids, "hb", barcode_scans=0) == [True, True]
    assert SlotDevice.objects.count() == 0
    assert allowed(client, item, uuids, "x", pages={"core": 1}) == [True, False]


def test_the_overuse_budget_runs_out(client):
    item = concurrent_item(quantity=1, overuse_percent=100, overuse_budget=2)  # ceiling 2, 2 device-slots
    uuids = devices(client, item, 2)
    for k in range(3):
        slot = SLOT - timedelta(minutes=3 * k)
        assert allowed(client, item, uuids, f"r{k}", slot=slot) == [True, k < 2]
    assert quota_used(item, "overuse_spent") == 2
    decision = Decision.objects.filter(device_uuid="c1").latest("id")
    assert decision.rule == "overuse_budget_spent" and decision.counts["spent"] == 2


def test_the_default_budget_is_a_thousand_times_the_quantity(client):
    item = concurrent_item(quantity=3)
    assert item.effective_overuse_budget == 3000 and item.concurrency_ceiling == 3


def test_a_concurrent_device_is_active_to_the_end_of_the_next_slot(client):
    item = concurrent_item(quantity=5)
    move_clock(NOW + timedelta(seconds=100))
    body = authorize(client, item.project, "c", product="dlr").json()
    assert body["active_until"] == "2026-11-27T17:30:00Z" and body["remaining"] == {}
    claims = verify_local_license(body["local_license"], now=NOW)
    assert claims["exp"] == int((SLOT + timedelta(minutes=6)).timestamp()) and "period_s" not in claims
    move_clock(NOW + timedelta(minutes=4))
    answer = report(client, item.project, "c", "r", SLOT + timedelta(minutes=3), barcode_scans=1).json()
    assert answer["active_until"] == "2026-11-27T17:33:00Z"
    move_clock(NOW + timedelta(minutes=9))  # idle past the end of the next slot
    lost = report(client, item.project, "c", "r2", SLOT + timedelta(minutes=9), barcode_scans=1).json()
    assert lost["error"]["code"] == 4


def test_a_late_report_counts_in_its_own_slot(client):
    item = concurrent_item(quantity=1, overuse_percent=0)
    uuids = devices(client, item, 2)
    earlier = SLOT - timedelta(hours=2)
    assert allowed(client, item, uuids[:1], "now") == [True]
    assert allowed(client, item, uuids[1:], "late", slot=earlier) == [True]
    assert set(SlotDevice.objects.values_list("slot_start", flat=True)) == {SLOT, earlier}
