"""The device API's hot statements are prepared on PostgreSQL (devices.prepared.hot_cursor):
bound on the server and parsed and planned once per connection, not once per request; every
other statement keeps Django's client-side binding, and ``HOT_SQL_PREPARED`` off (a pooler in
transaction mode) prepares nothing. The answers are the same either way (the API suites run
with it on)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests import factories
from tests.factories import authorize, report

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("frozen", "no_rate_limits"),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def traffic(client) -> tuple[dict, dict]:
    seats = factories.LicenseItemFactory(quantity=1000)  # far from its ceiling: seats from shares
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    for i in range(3):
        assert authorize(client, seats.project, f"d{i}").status_code == 200
        assert authorize(client, scans.project, f"s{i}").status_code == 200
    bodies = [report(client, scans.project, f"s{i}", f"r{i}", barcode_scans=2).json() for i in range(3)]
    return authorize(client, seats.project, "d0").json(), bodies[-1]


def test_the_hot_statements_are_prepared_once_per_connection(client):
    connection.close()  # a fresh session: nothing prepared yet
    traffic(client)
    statements = prepared()
    assert any("devices_seatshare" in s and s.lstrip().upper().startswith("UPDATE") for s in statements)  # the seat
    assert any('FROM "devices_device"' in s and "devices_quotacounter" in s for s in statements)  # the report's read
    assert any(s.lstrip().upper().startswith(("INSERT", "WITH")) and "usage_usagereport" in s for s in statements)
    assert any("devices_quotashard" in s and s.lstrip().upper().startswith("UPDATE") for s in statements)  # the counter
    assert all("$1" in s or "$" not in s for s in statements)  # bound on the server
    # Each once: the next requests reuse them.
    assert len(statements) == len(set(statements))
    before = len(statements)
    traffic(client)
    assert len(prepared()) <= before + 2  # the same statements (a new item's first seat may add its own)
    # Django's own statements are not prepared (pages, jobs, the admin).
    assert not any("pg_prepared_statements" in s for s in prepared())


def test_off_prepares_nothing_and_answers_alike(client, settings):
    connection.close()
    on = traffic(client)
    settings.HOT_SQL_PREPARED = False
    connection.close()
    off = traffic(client)
    assert prepared() == []
    for a, b in zip(on, off, strict=True):
        assert a.keys() == b.keys()
        assert a.get("allowed") == b.get("allowed") and a["remaining"] == b["remaining"]
