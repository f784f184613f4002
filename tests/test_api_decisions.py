"""Every authorization, every refusal and every seat change of the device API is recorded with the
item it looked at, the rule that decided, the message, and the counts and limits at that moment;
a routine allowed usage report (and its replay) is recorded by its UsageReport instead
(docs/benchmarks.md, "What is kept")."""

from __future__ import annotations

import pytest

from devices.models import Decision
from tests import factories
from tests.factories import NOW, authorize, release, report
from usage.models import UsageReport

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def test_each_authorization_refusal_and_seat_change_writes_one_decision(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0)
    project = item.project
    authorize(client, project, "a")  # allowed: seat taken
    authorize(client, project, "b")  # refused: 120
    report(client, project, "a", "r1", barcode_scans=2)  # allowed: contact
    report(client, project, "a", "r1", barcode_scans=2)  # duplicate
    report(client, project, "a", "r1", barcode_scans=3)  # 409
    report(client, project, "zz", "r1")  # code 4: never authorized
    authorize(client, project, "a", product="dlr")  # 104
    release(client, project, "a")  # released
    report(client, project, "a", "r2", barcode_scans=1)  # code 4: seat lost, recorded
    rows = list(Decision.objects.order_by("id").values_list("endpoint", "device_uuid", "allowed", "code", "rule"))
    assert rows == [
        ("authorize", "a", True, None, "seat_taken"),
        ("authorize", "b", False, 120, "seats_exhausted"),
        ("usage", "a", False, 2, "idempotency_conflict"),
        ("usage", "zz", False, 4, "device_not_authorized"),
        ("authorize", "a", False, 104, "no_matching_item"),
        ("release", "a", True, None, "released_by_device"),
        ("usage", "a", False, 4, "seat_lost"),
    ]
    assert all(d.created_at == NOW and d.project_id == project.pk for d in Decision.objects.all())
    first, refused = Decision.objects.order_by("id")[:2]
    assert first.item == item and first.counts == {"active": 0, "quantity": 1, "ceiling": 1}
    assert refused.item == item and refused.counts == {"active": 1, "quantity": 1, "ceiling": 1}
    assert refused.message == "1 of 1 seats are taken (grace 0)"
    assert Decision.objects.filter(device__isnull=False).count() == 5  # all but "zz" and "b"
    allowed = UsageReport.objects.get(device__device_uuid="a", report_id="r1")
    assert allowed.allowed and allowed.counted == {"barcode_scans": 2}  # the routine report's record


def test_an_unknown_key_has_no_project_to_record_against(client):
    item = factories.LicenseItemFactory()
    response = client.post(
        "/api/v1/authorize",
        {"license_key": "nope", "device_uuid": "d", "product": "dbr", "client_type": "desktop"},
        content_type="application/json",
    )
    assert response.status_code == 403 and item.project.decisions.count() == 0
