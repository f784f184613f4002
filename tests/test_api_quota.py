"""Scan and page quotas (SPEC section 4): always recorded, grace exact, checked after recording,
per module for pages; remaining without grace."""

from __future__ import annotations

import pytest

from devices.models import Decision
from tests import factories
from tests.factories import SLOT, authorize, error_of, report
from tests.quota import quota_used
from usage.models import UsageCount

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def scan_item(**fields):
    return factories.LicenseItemFactory(per_barcode_scan=True, **fields)


def test_it_reports_remaining_scans_and_the_item_dedup_interval(client):
    item = scan_item(quantity=1000, dedup_interval_ms=4500)
    body = authorize(client, item.project).json()
    assert body["remaining"] == {"barcode_scans": 1000}
    assert body["dedup_interval_ms"] == 4500
    assert body["active_until"] == item.license.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_report_that_reaches_quota_plus_grace_is_refused(client):
    item = scan_item(quantity=1000, quota_grace_percent=5)  # limit 1050
    authorize(client, item.project)
    below = report(client, item.project, report_id="a", barcode_scans=1049).json()
    assert below["allowed"] is True and below["remaining"] == {"barcode_scans": 0}
    reach = report(client, item.project, report_id="b", barcode_scans=1).json()
    assert reach["allowed"] is False and reach["error"]["code"] == 120
    assert reach["counted"]["barcode_scans"] == 1 and "local_license" not in reach
    assert quota_used(item, "barcode_scans") == 1050
    # Still recorded past the limit; every device of the item is refused, heartbeats included.
    past = report(client, item.project, report_id="c", barcode_scans=7).json()
    assert past["allowed"] is False
    assert report(client, item.project, report_id="d").json()["allowed"] is False
    assert quota_used(item, "barcode_scans") == 1057
    assert error_of(authorize(client, item.project, "new"))["code"] == 120
    assert error_of(authorize(client, item.project))["code"] == 120


def test_the_grace_is_exact_not_rounded(client):
    item = scan_item(quantity=10, quota_grace_percent=5)  # limit 10.5: 10 is fine, 11 is over
    authorize(client, item.project)
    assert report(client, item.project, report_id="a", barcode_scans=10).json()["allowed"] is True
    assert report(client, item.project, report_id="b", barcode_scans=1).json()["allowed"] is False
    item2 = scan_item(quantity=3, quota_grace_percent=0)
    authorize(client, item2.project)
    assert report(client, item2.project, report_id="a", barcode_scans=2).json()["allowed"] is True
    assert report(client, item2.project, report_id="b", barcode_scans=1).json()["allowed"] is False


def test_it_counts_usage_in_its_slot_not_on_arrival(client):
    item = scan_item()
    authorize(client, item.project)
    earlier = SLOT.replace(hour=9)
    report(client, item.project, report_id="old", slot=earlier, barcode_scans=3)
    count = UsageCount.objects.get(item=item)
    assert (count.slot_start, count.metric, count.count) == (earlier, "barcode_scans", 3)


def test_sdk_counts_and_sightings_add_up(client):
    item = scan_item()
    authorize(client, item.project)
    sightings = [{"ts_ms": 1_000, "frame": 1, "format": "QR_CODE", "text": "A"}]
    body = report(client, item.project, barcode_scans=2, sightings=sightings).json()
    assert body["counted"] == {"barcode_scans": 3, "pages": {}}


def test_the_dwt_barcode_addon_is_its_own_scan_quota(client):
    lic = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=lic.organization)
    addon = factories.LicenseItemFactory(per_barcode_scan=True, product="dwt", license=lic, project=project, quantity=5)
    factories.LicenseItemFactory(per_page=True, product="dwt", license=lic, project=project)
    body = authorize(client, project, product="dwt", addon="barcode_reader").json()
    assert body["item"]["id"] == str(addon.pk)
    base = authorize(client, project, "base", product="dwt").json()
    assert base["item"]["option"] == "per_page"


# --- pages -------------------------------------------------------------------------------------


def page_item(**quantities):
    return factories.LicenseItemFactory(per_page=True, product="dwt", quantities=quantities, quota_grace_percent=0)


def test_pages_count_per_module(client):
    item = page_item(core=100, ocr=10)
    body = authorize(client, item.project, product="dwt").json()
    assert body["remaining"] == {"pages": {"core": 100, "ocr": 10}} and "dedup_interval_ms" not in body
    answer = report(client, item.project, report_id="a", pages={"core": 40, "ocr": 3}).json()
    assert answer["counted"] == {"barcode_scans": 0, "pages": {"core": 40, "ocr": 3}}
    assert answer["remaining"] == {"pages": {"core": 60, "ocr": 7}}
    assert set(UsageCount.objects.filter(item=item).values_list("metric", "count")) == {
        ("pages_core", 40),
        ("pages_ocr", 3),
    }


def test_an_exhausted_module_refuses_only_reports_that_count_it(client):
    item = page_item(core=100, ocr=10)
    authorize(client, item.project, product="dwt")
    ocr_out = report(client, item.project, report_id="a", pages={"ocr": 10}).json()
    assert ocr_out["allowed"] is False and "ocr 10 of 10" in ocr_out["error"]["message"]
    assert report(client, item.project, report_id="b", pages={"core": 5}).json()["allowed"] is True
    assert report(client, item.project, report_id="c", pages={"core": 5, "ocr": 1}).json()["allowed"] is False
    # Authorization is refused only when every module is exhausted.
    assert authorize(client, item.project, "other", product="dwt").status_code == 200
    report(client, item.project, report_id="d", pages={"core": 90})
    assert error_of(authorize(client, item.project, "third", product="dwt"))["code"] == 120
    assert report(client, item.project, report_id="e").json()["allowed"] is False


def test_pages_of_a_module_the_item_does_not_license_are_refused_but_recorded(client):
    item = page_item(core=100)
    authorize(client, item.project, product="dwt")
    answer = report(client, item.project, pages={"webcam": 2}).json()
    assert answer["allowed"] is False and "webcam" in answer["error"]["message"]
    assert UsageCount.objects.get(item=item).metric == "pages_webcam"


def test_quota_decisions_carry_used_and_quantity(client):
    item = scan_item(quantity=10, quota_grace_percent=0)
    authorize(client, item.project)
    report(client, item.project, barcode_scans=10)
    decision = Decision.objects.filter(endpoint="usage").get()
    assert decision.counts == {"used": 10, "quantity": 10, "grace": 0}
    assert (decision.allowed, decision.code, decision.rule) == (False, 120, "quota_exhausted")
