"""Usage reports and counts partitioned by month of slot on PostgreSQL (usage.partitions,
docs/operations.md "Usage partitions"): the tables are partitioned, purge drops whole months
past retention and keeps the live ones, a report outside every month lands in the default
partition and is counted, and (both backends) a report_id stays unique per device across slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings

from licenses.clock import slot_start_of
from tests import factories
from tests.factories import NOW, SLOT, authorize, error_of, report
from tests.quota import quota_used
from usage import jobs, partitions
from usage.models import UsageCount, UsageReport, UsageRollup

pytestmark = pytest.mark.django_db


def names(table: str) -> list[str]:
    return [p.name for p in partitions.partitions(table)]


def where(model, pk_field: str, pk: int) -> set[str]:
    """The partitions holding the rows of ``model`` whose ``pk_field`` is ``pk``."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {pk_field} = %s", [pk])
        return {name for (name,) in cursor.fetchall()}


def test_reports_and_counts_are_partitioned_by_month_with_a_default(postgres_only):
    for table in ("usage_usagereport", "usage_usagecount"):
        assert partitions.is_partitioned(table)
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT pg_get_partkeydef(partrelid) FROM pg_partitioned_table
                WHERE partrelid = %s::regclass""",
                [table],
            )
            assert cursor.fetchone()[0] == "RANGE (slot_start)"
        # The months around factories.NOW (31 days back, 3 ahead), then the default.
        assert names(table) == [f"{table}_p2026_{m:02d}" for m in (10, 11, 12)] + [
            f"{table}_p2027_01",
            f"{table}_p2027_02",
            f"{table}_default",
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'usage_usagereport'::regclass AND contype IN ('p', 'u') ORDER BY conname"""
        )
        constraints = dict(cursor.fetchall())
        cursor.execute(
            """SELECT count(*) FROM pg_constraint WHERE conrelid = 'usage_usagecount'::regclass
            AND confrelid = 'usage_usagereport'::regclass"""
        )
        assert cursor.fetchone()[0] == 0  # no foreign key into a partitioned table
    assert constraints["report_id_unique_per_device"] == "UNIQUE (device_id, report_id, slot_start)"
    assert "PRIMARY KEY (id, slot_start)" in constraints.values()


@override_settings(REPORT_RETENTION_DAYS=400)
def test_purge_drops_the_months_past_retention_and_keeps_the_live_ones(postgres_only, now):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    dev = factories.DeviceFactory(item=item)
    cutoff = now - timedelta(days=400)  # 2025-10-23
    # Months June to October 2025 exist (the months around 2025-07-15).
    assert partitions.ensure_partitions(now=datetime(2025, 7, 15, tzinfo=UTC))["partitions_created"] == 10

    def made(slot: datetime, received: datetime | None = None) -> UsageReport:
        return factories.UsageReportFactory(
            device=dev, slot_start=slot, received_at=received or slot, counted={"barcode_scans": 1}
        )

    old = [made(datetime(2025, m, 10, tzinfo=UTC)) for m in (6, 7, 8)]
    late = made(datetime(2025, 9, 29, 23, 57, tzinfo=UTC), received=cutoff + timedelta(days=1))
    straddling = made(datetime(2025, 10, 1, tzinfo=UTC))  # past retention, in a month that is not
    live = made(SLOT)
    before = names("usage_usagereport")
    with connection.cursor() as cursor:  # the foreign keys checked now, as a commit would: no
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # table drops with checks pending

    summary = jobs.purge_old_data(now=now)

    dropped = {f"usage_usagereport_p2025_{m:02d}" for m in (6, 7, 8)}
    assert summary["partitions_dropped"] == 3 and summary["partitions_waiting"] == 0
    assert set(before) - set(names("usage_usagereport")) == dropped
    assert set(names("usage_usagecount")) == {n.replace("usagereport", "usagecount") for n in set(before) - dropped}
    kept = [late.pk, straddling.pk, live.pk]
    assert sorted(UsageReport.objects.values_list("pk", flat=True)) == kept
    assert sorted(UsageCount.objects.values_list("report_id", flat=True)) == kept
    assert summary["usagereport"] == 0  # nothing deleted row by row: the default partition was empty
    assert all(not UsageReport.objects.filter(pk=r.pk).exists() for r in old)
    # A second run changes nothing.
    again = jobs.purge_old_data(now=now)
    assert again["partitions_dropped"] == 0 and names("usage_usagereport") == sorted(
        set(before) - dropped, key=before.index
    )


@pytest.mark.usefixtures("frozen", "no_rate_limits")
def test_a_report_outside_every_month_lands_in_default_is_counted_and_moves_to_its_month(postgres_only, client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    assert authorize(client, item.project, "u1").status_code == 200
    with connection.cursor() as cursor:  # November 2026 missing: as if the job had not run
        for table in partitions.tables():
            cursor.execute(f"DROP TABLE {table}_p2026_11")

    first = report(client, item.project, "u1", "r1", barcode_scans=5)
    assert first.status_code == 200 and first.json()["allowed"] is True
    stored = UsageReport.objects.get(report_id="r1")
    assert where(UsageReport, "id", stored.pk) == {"usage_usagereport_default"}
    assert where(UsageCount, "report_id", stored.pk) == {"usage_usagecount_default"}
    assert quota_used(item, "barcode_scans") == 5

    assert partitions.ensure_partitions(now=NOW) == {"partitions_created": 2, "rows_moved": 2}

    assert where(UsageReport, "id", stored.pk) == {"usage_usagereport_p2026_11"}
    assert where(UsageCount, "report_id", stored.pk) == {"usage_usagecount_p2026_11"}
    again = report(client, item.project, "u1", "r1", barcode_scans=5)  # found in its month
    assert again.json() == {**first.json(), "status": "duplicate"}
    jobs.rollup_usage(now=NOW + timedelta(minutes=10))
    assert UsageRollup.objects.get(item=item, granularity="2h").count == 5


@pytest.mark.usefixtures("frozen", "no_rate_limits")
def test_a_report_id_used_in_another_slot_is_a_conflict_and_counts_nothing(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    assert authorize(client, item.project, "u1").status_code == 200
    first = report(client, item.project, "u1", "r1", slot=SLOT - timedelta(minutes=3), barcode_scans=2)
    assert first.status_code == 200

    reused = report(client, item.project, "u1", "r1", slot=SLOT, barcode_scans=2)

    assert reused.status_code == 409 and error_of(reused)["code"] == 2
    assert UsageReport.objects.filter(report_id="r1").count() == 1
    assert quota_used(item, "barcode_scans") == 2
    retry = report(client, item.project, "u1", "r1", slot=SLOT - timedelta(minutes=3), barcode_scans=2)
    assert retry.json() == {**first.json(), "status": "duplicate"}


def test_the_months_kept_ready_reach_back_past_the_oldest_slot_accepted():
    months = partitions.months_around(datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    assert months[0] == datetime(2026, 1, 1, tzinfo=UTC)  # 31 days back: January 29
    assert months[-1] == datetime(2026, 6, 1, tzinfo=UTC)
    assert slot_start_of(datetime(2026, 3, 1, tzinfo=UTC) - timedelta(days=30)) >= months[0]
