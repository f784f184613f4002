"""CSV downloads: the SPEC section 9 files of usage.exports as attachments, with the period, for
members only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from tests import factories
from tests.factories import MODEL_BACKEND, day_start, world
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db
NOW = factories.NOW


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def download(client, w, what: str, query: str = ""):
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    response = client.get(reverse("portal:export", args=[w.project.pk, what]) + query)
    assert response.status_code == 200
    assert response.streaming  # streamed from server-side cursors, never built in memory
    return Downloaded(response, b"".join(response.streaming_content))


class Downloaded:
    """A streamed download read whole: its headers and ``content``."""

    def __init__(self, response, content: bytes) -> None:
        self.response, self.content, self.status_code = response, content, response.status_code

    def __getitem__(self, header: str) -> str:
        return self.response[header]


def test_it_serves_the_usage_csv_with_its_headers(client, w):
    factories.UsageRollupFactory(
        item=w.scan,
        metric="barcode_scans",
        bucket_start=day_start(NOW, 1) + timedelta(hours=2),
        count=12,
        granularity=UsageRollup.TWO_HOURS,
    )
    response = download(client, w, "usage")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{w.project.name}-usage.csv"'
    assert response["Cache-Control"] == "private, no-store"
    body = response.content
    assert not body.startswith(b"\xef\xbb\xbf")  # no BOM
    lines = body.decode("utf-8").splitlines()
    assert lines == [
        "bucket_start,item,metric,count",
        f"2026-11-26T02:00:00Z,{w.scan.pk},barcode_scans,12",
        f"2026-11-27T00:00:00Z,{w.scan.pk},barcode_scans,40",
    ]


def test_it_limits_the_csv_to_the_period(client, w):
    response = download(client, w, "concurrency", "?from=2026-11-27T00:03:00Z&to=2026-11-27T00:06:00Z")
    assert 'filename="web-app-concurrency-from-20261127-to-20261127.csv"' in response["Content-Disposition"]
    assert response.content.decode().splitlines() == [
        "slot_start,item,active_devices,limit,overuse_devices",
        f"2026-11-27T00:03:00Z,{w.concurrent.pk},5,5,0",
    ]


def test_it_serves_the_devices_csv_of_this_project_only(client, w):
    lines = download(client, w, "devices").content.decode().splitlines()
    assert lines[0] == (
        "device_uuid,item,client_type,origin,device_name,first_authorized_at,last_seen_at,active_until,state"
    )
    assert len(lines) == 1 + 3 + 1 + 1  # 3 seats, 1 expired, 1 server
    assert any(",Front desk 0," in line and line.endswith(",active") for line in lines)
    assert not any("Globex laptop" in line for line in lines)


def test_it_refuses_an_unknown_export_or_a_bad_date(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    assert client.get(reverse("portal:export", args=[w.project.pk, "secrets"])).status_code == 400
    bad = client.get(reverse("portal:export", args=[w.project.pk, "usage"]) + "?from=yesterday")
    assert bad.status_code == 400 and b"from/to" in bad.content


def test_it_refuses_the_csv_to_an_outsider(client, w):
    client.force_login(w.outsider, backend=MODEL_BACKEND)
    assert client.get(reverse("portal:export", args=[w.project.pk, "devices"])).status_code == 404


def test_it_neutralizes_cells_a_spreadsheet_would_run_as_formulas(client, w):
    """OWASP CSV injection: a cell starting with =, +, -, @, tab or CR gets a leading quote; the
    SPEC section 9 header and plain numbers are unchanged, and the value stays readable."""
    import csv
    import io

    from tests import factories

    hostile = {
        '=HYPERLINK("http://evil.example","x")': '\'=HYPERLINK("http://evil.example","x")',
        "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
        "-2+3": "'-2+3",
        "@SUM(1,1)": "'@SUM(1,1)",
        "\tTabbed": "'\tTabbed",
        "Plain name": "Plain name",
    }
    for name in hostile:
        factories.DeviceFactory(item=w.seats, now=w.now, device_name=name)
    body = download(client, w, "devices").content.decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0] == [
        "device_uuid", "item", "client_type", "origin", "device_name",
        "first_authorized_at", "last_seen_at", "active_until", "state",
    ]  # fmt: skip
    names = {r[4] for r in rows[1:]}
    for written in hostile.values():
        assert written in names, written
    assert not any(n.startswith(("=", "+", "-", "@", "\t", "\r")) for n in names)
    # CR never reaches a name (the device API refuses control characters), but the cell writer
    # neutralizes it too.
    from usage.exports import safe_cell

    assert safe_cell("\rReturn") == "'\rReturn" and safe_cell("-12") == "-12" and safe_cell("a=b") == "a=b"
    # Numbers stay numbers in the usage export.
    counts = [r[3] for r in csv.reader(io.StringIO(download(client, w, "usage").content.decode()))][1:]
    assert all(c.isdigit() for c in counts)
