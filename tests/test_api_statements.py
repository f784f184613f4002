"""The device API's hot paths in statements, not seconds (benchmarks measure time: make bench):
an authorization takes at most 5 SQL statements, a usage report at most 4 in one transaction,
whatever the number of seats already taken. Counted with CaptureQueriesContext around the whole
request, the API's middleware included; BEGIN and COMMIT are not statements of the work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from devices.models import Device
from tests import factories
from tests.factories import NOW, SLOT, authorize, report

# transaction=True: each request runs its own outermost transaction, as in production (no savepoints).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen", "no_rate_limits")]

AUTHORIZE_MAX = 5
USAGE_MAX = 4


CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(call) -> tuple[object, list[str]]:
    """The request's SQL statements (transaction control left out: PostgreSQL's BEGIN is not
    even logged), each checked to run in a transaction (``in_atomic_block``) when ``atomic``."""
    seen: list[tuple[str, bool]] = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = call()
    sql = [s for s, _ in seen if not s.lstrip().upper().startswith(CONTROL)]
    statements.in_transaction = [inside for s, inside in seen if not s.lstrip().upper().startswith(CONTROL)]
    statements.savepoints = [s for s, _ in seen if s.lstrip().upper().startswith("SAVEPOINT")]
    return response, sql


def writes(sql: list[str]) -> list[str]:
    return [s for s in sql if not s.lstrip().upper().startswith("SELECT")]


def one_transaction() -> bool:
    """Every statement of the last ``statements`` call ran inside one outermost atomic block."""
    return all(statements.in_transaction) and not statements.savepoints


def devices_holding_seats(item, n: int) -> None:
    until = NOW + timedelta(days=30)
    Device.objects.bulk_create(
        Device(project=item.project, device_uuid=f"held-{i}", item=item, client_type="desktop", state="active",
               first_authorized_at=NOW, authorized_at=NOW, last_seen_at=NOW, active_until=until)
        for i in range(n)
    )  # fmt: skip


@pytest.mark.parametrize("seats_taken", [0, 300])
def test_a_new_device_takes_a_seat_in_five_statements_whatever_the_seats_taken(client, seats_taken):
    item = factories.LicenseItemFactory(quantity=1000)
    devices_holding_seats(item, seats_taken)
    authorize(client, item.project, "warm-up")  # creates the item's seat counter from the devices
    response, sql = statements(lambda: authorize(client, item.project, "new"))
    assert response.status_code == 200, response.json()
    assert response.json()["remaining"] == {"seats": 1000 - seats_taken - 2}
    assert len(sql) <= AUTHORIZE_MAX, sql
    assert not statements.savepoints
    assert not any("COUNT(" in s.upper() and "devices_seatcounter" not in s for s in sql), sql


def test_a_device_keeping_its_seat_re_authorizes_in_five_statements(client):
    item = factories.LicenseItemFactory(quantity=10)
    authorize(client, item.project, "d1")
    response, sql = statements(lambda: authorize(client, item.project, "d1"))
    assert response.status_code == 200 and response.json()["remaining"] == {"seats": 9}
    assert len(sql) <= AUTHORIZE_MAX, sql


def test_a_scan_item_authorizes_in_five_statements(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    response, sql = statements(lambda: authorize(client, item.project, "s1"))
    assert response.status_code == 200 and response.json()["remaining"] == {"barcode_scans": 1000}
    assert len(sql) <= AUTHORIZE_MAX, sql


@pytest.mark.parametrize("option", ["per_barcode_scan", "per_page", "per_client_device"])
def test_a_usage_report_takes_at_most_four_statements_in_one_transaction(client, option):
    fields = {"per_barcode_scan": True, "quantity": 1000} if option == "per_barcode_scan" else {}
    if option == "per_page":
        fields = {"per_page": True, "product": "dwt"}
    item = factories.LicenseItemFactory(**fields)
    product = "dwt" if option == "per_page" else "dbr"
    assert authorize(client, item.project, "u1", product=product).status_code == 200
    counts = {"pages": {"core": 3}} if option == "per_page" else {"barcode_scans": 5}
    report(client, item.project, "u1", "warm", slot=SLOT - timedelta(minutes=3), **counts)
    response, sql = statements(lambda: report(client, item.project, "u1", "r1", **counts))
    body = response.json()
    assert response.status_code == 200 and body["allowed"] is True, body
    # SQLite has no data-modifying CTE: the report's count rows and its device-day are two more
    # inserts there.
    extra = 2 if connection.vendor == "sqlite" else 0
    assert len(sql) <= USAGE_MAX + extra, sql
    assert one_transaction()
    if option != "per_client_device":
        # The counter, last: the device's share of it (devices.quota), one conditional UPDATE.
        assert (
            "devices_quotashard" in sql[-1] and sql[-1].upper().startswith("UPDATE") and "RETURNING" in sql[-1].upper()
        )


def test_a_replayed_report_reads_once_and_writes_nothing(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    authorize(client, item.project, "u1")
    first = report(client, item.project, "u1", "r1", barcode_scans=2).json()
    response, sql = statements(lambda: report(client, item.project, "u1", "r1", barcode_scans=2))
    assert response.json() == {**first, "status": "duplicate"}
    assert writes(sql) == [] and len(sql) <= 2, sql


def test_a_report_with_sightings_adds_one_statement_for_the_dedup_memory(client):
    """The dedup memory of a device is read and merged in one statement on PostgreSQL
    (usage.hot_sql.remember_sightings), whatever the number of sightings; SQLite reads and
    upserts apart."""
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000)
    authorize(client, item.project, "u1")
    report(client, item.project, "u1", "warm", slot=SLOT - timedelta(minutes=3), barcode_scans=1)
    sightings = [{"ts_ms": 1_795_800_240_000 + i, "frame": i, "format": "QR_CODE", "text": f"T{i}"} for i in range(300)]
    response, sql = statements(lambda: report(client, item.project, "u1", "r1", sightings=sightings))
    body = response.json()
    assert response.status_code == 200 and body["counted"]["barcode_scans"] == 300, body
    memory = [s for s in sql if "usage_sightingmemory" in s]
    if connection.vendor == "postgresql":
        assert len(memory) == 1 and len(sql) <= USAGE_MAX + 1, sql
    else:
        # 300 keys: two batches of each (usage.hot_sql._SQLITE_BATCH), and the count row and device day
        assert len(memory) == 4 and len(sql) <= USAGE_MAX + 2 + 4, sql
    assert one_transaction()
