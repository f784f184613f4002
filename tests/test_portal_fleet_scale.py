"""The device list, statistics and CSV exports built for fleets (docs/benchmarks.md, "Pages and
exports"): a capped count that says "more than", one search condition over four columns (one
trigram index on PostgreSQL), devices by usage summed before the names are read, and exports
whose lines PostgreSQL builds byte for byte as Python writes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from devices.models import Device
from portal import paging
from tests import factories
from tests.factories import MODEL_BACKEND, world
from usage import exports
from usage.models import DeviceUsageDay

pytestmark = pytest.mark.django_db
NOW = factories.NOW


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def devices_page(client, w, query: str = ""):
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    response = client.get(reverse("portal:devices", args=[w.project.pk]) + query)
    assert response.status_code == 200
    return response


def test_the_device_list_stops_counting_at_its_cap_and_says_so(client, w, monkeypatch):
    for k in range(7):
        factories.DeviceFactory(item=w.seats, now=NOW, device_uuid=f"fleet-{k}")
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    monkeypatch.setattr("portal.views.devices.PAGE_SIZE", 2)
    page = devices_page(client, w).content.decode()
    assert "Page 1 of more than 3 (more than 5 match: not counted further)" in page
    assert 'rel="next"' in page and 'rel="prev"' not in page
    # A page past the cap opens; a page past the end falls back to the last counted page.
    far = devices_page(client, w, "?page=5").content.decode()
    assert "Page 5 (more than 5 match" in far and 'rel="prev"' in far
    assert "Page 3 of more than 3" in devices_page(client, w, "?page=999").content.decode()
    assert "Page 1 of more than 3" in devices_page(client, w, "?page=x").content.decode()


def test_a_list_that_fits_on_its_page_is_not_counted_again(client, w, monkeypatch):
    """The last page's rows say how long the list is: a search with a page of results runs its
    search once (no capped COUNT over it), and the page still says how many match."""
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr("portal.views.devices.PAGE_SIZE", 2)
    factories.DeviceFactory(item=w.seats, now=NOW, device_uuid="lonely-one")
    with CaptureQueriesContext(connection) as ctx:
        page = devices_page(client, w, "?q=lonely").content.decode()
    assert "lonely-one" in page and "Page 1 of" not in page  # one page: no pagination
    searched = [q["sql"] for q in ctx.captured_queries if "devices_devicesearch" in q["sql"]]
    assert len(searched) == 1, searched
    total = Device.objects.filter(project=w.project).count()
    last = -(-total // 2)
    assert last >= 2
    for number, counted in ((1, True), (last, False)):  # page 1 has a next page: counted
        with CaptureQueriesContext(connection) as ctx:
            page = devices_page(client, w, f"?page={number}").content.decode()
        assert f"Page {number} of {last}</span>" in page
        capped = [q for q in ctx.captured_queries if "COUNT(*)" in q["sql"] and "LIMIT" in q["sql"]]
        assert len(capped) == (1 if counted else 0), capped


def test_an_exact_count_under_the_cap_reads_as_before(client, w, monkeypatch):
    monkeypatch.setattr("portal.views.devices.PAGE_SIZE", 2)
    page = devices_page(client, w).content.decode()
    total = Device.objects.filter(project=w.project).count()
    assert f"Page 1 of {-(-total // 2)}</span>" in page and "more than" not in page


def test_the_search_matches_each_column_but_never_across_two(client, w):
    factories.DeviceFactory(
        item=w.seats,
        now=NOW,
        device_uuid="uuid-abc",
        device_name="Lobby",
        origin="https://shop.example",
        platform="ios",
    )
    for q, found in (("UUID-AB", True), ("lobby", True), ("shop.exa", True), ("IOS", True), ("abclobby", False)):
        page = devices_page(client, w, f"?q={q}").content.decode()
        assert ("uuid-abc" in page) is found, q
    # A control character in the query (the columns are joined by a line feed) never matches.
    assert "uuid-abc" not in devices_page(client, w, "?q=abc%0ALobby").content.decode()
    assert "uuid-abc" in devices_page(client, w, "?q=%0Auuid-abc").content.decode()


def test_devices_by_usage_sum_each_device_and_show_its_name(client, w):
    busy = factories.DeviceFactory(item=w.seats, now=NOW, device_name="Busy one", client_type="web")
    today = NOW.date()
    for days_ago, metric, n in ((0, "barcode_scans", 500), (1, "pages_core", 70), (40, "barcode_scans", 10**6)):
        DeviceUsageDay.objects.create(
            device=busy, item=w.seats, day=today - timedelta(days=days_ago), metric=metric, count=n
        )
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("portal:statistics", args=[w.project.pk]))
    rows = response.context["device_rows"]
    assert rows[0]["report__device_id"] == busy.pk and rows[0]["report__device__device_name"] == "Busy one"
    assert (rows[0]["scans"], rows[0]["pages"], rows[0]["total"]) == (500, 70, 570)  # day 40 is outside
    assert rows[0]["report__device__client_type"] == "web"


TRICKY = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\ronly", "=1+1", "-12", "-x", "@home", "\tTab", "", "é ü"]


def test_every_export_is_the_same_bytes_from_postgresql_and_from_python(w):
    """On PostgreSQL COPY writes the lines (usage.exports._copy_select); elsewhere, and
    as the reference, Python formats the rows (csv_line). Both are compared on awkward texts."""
    for k, text in enumerate(TRICKY):
        factories.DeviceFactory(
            item=w.seats if k % 3 else None, project=w.project, now=NOW, device_uuid=f"t-{k}", device_name=text,
            origin=text and f"https://{k}.example", client_type="web",
        )  # fmt: skip
    for what in exports.WHATS:
        python = "".join(exports.csv_line(r) for r in exports.export_rows(project=w.project, what=what))
        streamed = b"".join(exports.stream_csv(project=w.project, what=what)).decode()
        assert streamed == python, what
        bounded = dict(start=NOW - timedelta(days=1), end=NOW)
        python = "".join(exports.csv_line(r) for r in exports.export_rows(project=w.project, what=what, **bounded))
        assert b"".join(exports.stream_csv(project=w.project, what=what, **bounded)).decode() == python, what
    body = b"".join(exports.stream_csv(project=w.project, what="devices")).decode()
    assert '"two\nlines"' in body and '"cr\ronly"' in body and '"say ""hi"""' in body and '"a,b"' in body
    assert ",'=1+1," in body and ",-12," in body and ",'-x," in body and ",'@home," in body


def test_csv_line_quotes_like_postgresql_copy():
    assert exports.csv_line(["a", "", "b,c", 'd"e', "f\rg", "h\ni"]) == 'a,,"b,c","d""e","f\rg","h\ni"\n'
    assert exports.csv_line(["=x", "-1.5", "+y"]) == "'=x,-1.5,'+y\n"
