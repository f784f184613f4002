"""The staff dashboard: licenses near quota (per page module too) or seats, near expiry, overuse
spent, refusals of the last day by code, recent audit entries; each row links into the admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from licenses.models import AuditLog, License
from tests import factories
from tests.factories import MODEL_BACKEND, world

pytestmark = pytest.mark.django_db
NOW = factories.NOW


@pytest.fixture
def page(client):
    def get(w):
        client.force_login(w.staff, backend=MODEL_BACKEND)
        response = client.get(reverse("portal:staff_dashboard"))
        assert response.status_code == 200
        return re.sub(r"\s+", " ", response.content.decode())

    return get


def section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def test_it_lists_items_at_or_above_80_percent_with_admin_links(page):
    with time_machine.travel(NOW, tick=False):
        w = world(NOW)
        for _ in range(5):  # 8 of 10 seats
            factories.DeviceFactory(item=w.seats, now=NOW)
        low = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
        factories.QuotaCounterFactory(item=low, metric="barcode_scans", used=799)
        html = section(page(w), "near-h")
    change = reverse("admin:licenses_license_change", args=[w.scan.license_id])
    assert f'<a href="{change}">{w.scan.license.license_id}</a>' in html
    assert 'Barcode scans</td><td class="num">8,500</td><td class="num">10,000</td>' in html
    assert 'Pages (OCR)</td><td class="num">100</td><td class="num">100</td>' in html
    assert "Pages (core)" not in html  # 20 %
    assert 'Active seats</td><td class="num">8</td><td class="num">10</td>' in html
    assert low.license.license_id not in html  # 79.9 %
    assert reverse("admin:licenses_license_add_quota", args=[w.scan.license_id]) in html


def test_it_lists_licenses_expiring_within_30_days_and_skips_the_rest(page):
    with time_machine.travel(NOW, tick=False):
        w = world(NOW)  # expires in 20 days
        later = factories.LicenseFactory(expires_at=NOW + timedelta(days=31))
        gone = factories.LicenseFactory(expires_at=NOW - timedelta(days=1), starts_at=NOW - timedelta(days=100))
        suspended = factories.LicenseFactory(expires_at=NOW + timedelta(days=3), status=License.SUSPENDED)
        html = section(page(w), "exp-h")
    assert w.scan.license.license_id in html and ">20</td>" in html
    assert reverse("admin:licenses_license_renew", args=[w.scan.license_id]) in html
    for lic in (later, gone, suspended):
        assert lic.license_id not in html


def test_it_shows_overuse_spent_and_refusals_of_the_last_day_by_code(page):
    with time_machine.travel(NOW, tick=False):
        w = world(NOW)
        for k in range(3):
            factories.DecisionFactory(
                device=w.device,
                now=NOW,
                allowed=False,
                code=120,
                rule="seats_exhausted",
                created_at=NOW - timedelta(hours=k),
            )
        factories.DecisionFactory(device=w.device, now=NOW, allowed=False, code=113, rule="license_suspended")
        factories.DecisionFactory(
            device=w.device,
            now=NOW,
            allowed=False,
            code=111,
            rule="license_expired",
            created_at=NOW - timedelta(days=2),
        )
        html = page(w)
    overuse = section(html, "over-h")
    assert '<td class="num">40</td><td class="num">5,000</td>' in overuse
    refusals = section(html, "ref-h")
    assert "code 120: 3" in refusals and "code 113: 1" in refusals and "code 111" not in refusals
    decisions = reverse("admin:devices_decision_changelist")
    assert f'href="{decisions}?allowed__exact=0&amp;code__exact=120"' in refusals


def test_it_shows_recent_actions_with_links_into_the_admin(page):
    with time_machine.travel(NOW, tick=False):
        w = world(NOW)
        entry = AuditLog.objects.create(
            actor=w.staff, actor_name="staffer", action="license.suspend", object_type="license", object_id="L-1",
            organization=w.org,
        )  # fmt: skip
        html = section(page(w), "audit-h")
    assert "license.suspend" in html and "staffer" in html and "Acme Test" in html
    assert reverse("admin:licenses_auditlog_change", args=[entry.pk]) in html
