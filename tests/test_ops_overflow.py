"""Quantities at the largest the importer accepts (2,147,483,647, PostgreSQL's int4 maximum) never
overflow in SQL: the staff dashboard, the usage-alert job and the overuse budget multiply them in
64-bit arithmetic. SQLite computes in 64 bits anyway; the fault showed on PostgreSQL ("integer
out of range", a 500 for every staff user)."""

from __future__ import annotations

import pytest

from devices.models import OVERUSE_SPENT
from tests import factories
from usage.notices import send_usage_alerts

MAX_QUANTITY = 2_147_483_647
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


@pytest.fixture
def huge_items():
    scan = factories.LicenseItemFactory(per_barcode_scan=True, quantity=MAX_QUANTITY)
    factories.QuotaCounterFactory(item=scan, used=MAX_QUANTITY - 1)  # 99.99 %: on the dashboard
    pages = factories.LicenseItemFactory(per_page=True, product="dwt", quantities={"core": MAX_QUANTITY})
    factories.QuotaCounterFactory(item=pages, metric="pages_core", used=MAX_QUANTITY)
    seats = factories.LicenseItemFactory(per_client_device=True, quantity=MAX_QUANTITY)
    concurrent = factories.LicenseItemFactory(per_concurrent_device=True, quantity=MAX_QUANTITY, overuse_budget=None)
    factories.QuotaCounterFactory(item=concurrent, metric=OVERUSE_SPENT, used=5)
    return scan, pages, seats, concurrent


def test_the_staff_dashboard_shows_items_at_the_largest_quantity(huge_items):
    scan, pages, _, _ = huge_items
    client, _ = factories.staff_client()
    response = client.get("/staff/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "2,147,483,646" in page or "2147483646" in page  # the scan counter, near its quota
    assert scan.license.license_id in page and pages.license.license_id in page


def test_the_usage_alert_job_runs_at_the_largest_quantity(huge_items):
    result = send_usage_alerts(now=factories.NOW)
    assert result  # ran through the SQL without "integer out of range"
