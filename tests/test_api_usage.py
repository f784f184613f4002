"""Usage reports (SPEC section 6): idempotency by report_id, always recorded, suspended and expired
items, what a report refreshes, and the decision it writes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Decision, Device
from devices.services import release_device
from devices.signing import verify_local_license
from licenses.clock import slot_end_of, slot_start_of
from tests import factories
from tests.factories import NOW, SLOT, authorize, move_clock, report
from tests.quota import quota_used
from usage.models import UsageCount, UsageReport

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def test_it_accepts_a_report_and_answers_with_a_local_license(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    body = report(client, item.project, barcode_scans=4).json()
    assert body["status"] == "accepted" and body["allowed"] is True
    assert body["counted"] == {"barcode_scans": 4, "pages": {}}
    assert body["remaining"] == {"barcode_scans": 96}
    claims = verify_local_license(body["local_license"], now=NOW)
    assert claims["remaining"] == {"barcode_scans": 96} and claims["option"] == "per_barcode_scan"
    assert claims["license_key"] == item.project.license_key and claims["iat"] == int(NOW.timestamp())


def test_a_retry_replays_the_first_answer_and_counts_nothing(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    first = report(client, item.project, report_id="r-7", barcode_scans=4).json()
    move_clock(NOW + timedelta(minutes=1))
    again = report(client, item.project, report_id="r-7", barcode_scans=4).json()
    assert again == {**first, "status": "duplicate"}
    assert quota_used(item) == 4
    assert UsageReport.objects.count() == 1 and UsageCount.objects.count() == 1
    assert not Decision.objects.filter(endpoint="usage").exists()  # the first report is the record


def test_a_reused_report_id_with_another_body_counts_nothing(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    report(client, item.project, report_id="r-7", barcode_scans=4)
    response = report(client, item.project, report_id="r-7", barcode_scans=5)
    assert response.status_code == 409 and response.json()["error"]["code"] == 2
    other_slot = report(client, item.project, report_id="r-7", barcode_scans=4, slot=SLOT - timedelta(minutes=3))
    assert other_slot.status_code == 409
    assert quota_used(item) == 4


def test_the_same_body_spelled_differently_is_the_same_report(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    report(client, item.project, report_id="r-1", barcode_scans=4)
    same = report(
        client,
        item.project,
        report_id="r-1",
        barcode_scans=4,
        pages={},
        sightings=[],
        slot_start="2026-11-27T17:24:00+00:00",
    )
    assert same.json()["status"] == "duplicate"


def test_report_ids_are_per_device(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project, "a")
    authorize(client, item.project, "b")
    assert report(client, item.project, "a", report_id="x", barcode_scans=1).json()["status"] == "accepted"
    assert report(client, item.project, "b", report_id="x", barcode_scans=2).json()["status"] == "accepted"
    assert quota_used(item) == 3


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_a_report_for_a_suspended_or_revoked_item_is_recorded_and_refused_113(client, status):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    item.license.status = status
    item.license.save()
    body = report(client, item.project, barcode_scans=3).json()
    assert body["allowed"] is False and body["error"]["code"] == 113 and "local_license" not in body
    assert UsageCount.objects.get().count == 3


def test_a_report_for_an_expired_item_is_recorded(client):
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=100), expires_at=NOW + timedelta(hours=1))
    item = factories.LicenseItemFactory(per_client_device=True, license=lic)
    authorize(client, item.project)
    later = NOW + timedelta(hours=1)
    move_clock(later)
    body = report(client, item.project, barcode_scans=3, slot=slot_start_of(later)).json()
    # The seat ran out with the license (active_until = expires_at): code 4 sends the SDK to
    # re-authorize, which binds a renewal if there is one, or answers 111.
    assert body["allowed"] is False and body["error"]["code"] == 4
    assert UsageCount.objects.get().count == 3
    assert authorize(client, item.project).json()["error"]["code"] == 111


def test_an_expired_item_with_a_live_device_row_answers_111(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    device = Device.objects.get()
    item.license.expires_at = NOW  # expires now; the device row still says active later
    item.license.save()
    Device.objects.filter(pk=device.pk).update(active_until=NOW + timedelta(days=1))
    body = report(client, item.project, barcode_scans=1).json()
    assert body["error"]["code"] == 111


def test_usage_after_a_staff_release_is_recorded_and_refused_code_4(client):
    item = factories.LicenseItemFactory()
    authorize(client, item.project)
    staff = factories.UserFactory(is_staff=True)
    assert release_device(device=Device.objects.get(), now=NOW, actor=staff) is True
    assert release_device(device=Device.objects.get(), now=NOW, actor=staff) is False
    body = report(client, item.project, barcode_scans=2).json()
    assert body["error"]["code"] == 4 and body["counted"]["barcode_scans"] == 2
    rules = list(Decision.objects.order_by("id").values_list("rule", flat=True))
    assert rules == ["seat_taken", "released_by_staff", "already_released", "seat_lost"]


def test_a_heartbeat_counts_nothing(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project)
    body = report(client, item.project).json()
    assert body["allowed"] is True and body["counted"] == {"barcode_scans": 0, "pages": {}}
    assert UsageCount.objects.count() == 0 and UsageReport.objects.count() == 1


def test_slots_are_absolute_three_minute_slices():
    assert slot_start_of(NOW + timedelta(seconds=179, microseconds=999999)) == NOW
    assert slot_start_of(NOW + timedelta(seconds=180)) == NOW + timedelta(seconds=180)
    assert slot_end_of(NOW) == NOW + timedelta(minutes=3)
    assert int(slot_start_of(NOW - timedelta(microseconds=1)).timestamp()) % 180 == 0
