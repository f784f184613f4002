"""Charts and numbers (SPEC section 10): axes with titles and units, a series per item and metric,
DLS's three pies (all history, the period, today), the concurrency heat-map (weekday x hour, peak
per cell, the limit marked), thousands separators, and no "next day" into the future."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from portal.charts import heat_map, line_chart, pie_chart
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, day_start, world
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def test_a_line_chart_has_axis_titles_and_a_series_each():
    svg = str(
        line_chart(
            ["11-01", "11-02"], [("A", [1, 2]), ("B", [3, 4])], title="T", x_title="Day (UTC)", y_title="Scans per day"
        )
    )
    assert svg.count('class="axis-title"') == 2 and "Day (UTC)" in svg and "Scans per day" in svg
    assert svg.count("<polyline") == 2


def test_a_pie_gives_each_slice_its_number_and_share():
    pie = str(pie_chart([("Scans · item #1", 7500), ("Pages · item #2", 2500)], title="All history"))
    assert "Scans · item #1: <strong>7,500</strong> (75.0 %)" in pie and pie.count('class="slice') == 2
    assert "No usage." in str(pie_chart([("x", 0)], title="Today"))


def test_the_heat_map_marks_cells_above_the_limit():
    svg = str(heat_map({(0, 9): 12, (4, 14): 3}, limit=10, title="Heat"))
    assert svg.count("<rect") == 7 * 24
    assert "Mon 09:00-10:00 UTC: peak 12 devices, 2 above the limit" in svg
    assert svg.count('over"') == 1 and "1 weekday-hour cell above the limit" in svg


def test_the_statistics_page_draws_a_series_per_item_and_three_pies(client, w):
    other_scan = factories.LicenseItemFactory(
        per_barcode_scan=True, quantity=5000, project=w.project, license=w.scan.license
    )
    factories.UsageRollupFactory(item=other_scan, metric="barcode_scans", bucket_start=day_start(NOW, 2), count=1234)
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("portal:statistics", args=[w.project.pk])).content.decode()
    assert f"Barcode scans · item #{w.scan.pk}" in page and f"Barcode scans · item #{other_scan.pk}" in page
    assert page.count("<polyline") >= 3  # scans of two items and the pages
    assert "All history" in page and "Today, 2026-11-27" in page and page.count('class="pie"') == 3
    assert "Day (UTC)" in page and "Count per day" in page
    assert "1,234" in page


def test_the_concurrency_page_has_a_heat_map_hours_and_no_future_day(client, w):
    # A Monday 09:xx slot above the limit of 5, three weeks ago (2026-11-27 is a Friday).
    monday = day_start(NOW, 18) + timedelta(hours=9, minutes=3)
    assert monday.weekday() == 0
    factories.ConcurrencyRollupFactory(
        item=w.concurrent, slot_start=monday, active_devices=7, limit=5, overuse_devices=2
    )
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    url = reverse("portal:concurrency", args=[w.project.pk])
    with time_machine.travel(NOW, tick=False):
        page = client.get(url).content.decode()
        assert "Mon 09:00-10:00 UTC: peak 7 devices, 2 above the limit" in page
        assert "Next day" not in page and "Previous day" in page
        assert "hour by hour" in page and re.search(r"00:00–01:00</td><td class=\"num\">\d", page)
        assert "Time of day (UTC)" in page and "Active devices" in page
        assert "Next day" in client.get(url + "?day=2026-11-20").content.decode()
    assert UsageRollup.objects.exists()
