"""Migration usage 0009 on PostgreSQL keeps the rows: a scratch database migrated to usage 0008
(every other app to its latest) with reports (and their counts) in three months, then migrated forward, has them in their
months' partitions with the same ids, the months around today and a default partition, and
gives the next report the next id; migrated back, the tables are plain again with the same rows
and constraints. Runs ``migrate`` in a subprocess on a database of its own
(the suite runs without migrations), as tests/test_migrations_model_move.py does; on SQLite the
migration changes nothing (that test and test_migrations.py cover it there)."""

from __future__ import annotations

import pytest

from tests.test_migrations_model_move import migrated_to, run_in_scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SCRIPT = (
    migrated_to("usage", "0008_webhookdelivery_webhookattempt_from_api")
    + r"""
from datetime import UTC, datetime

from tests import factories  # the models of today: every other app is at its latest migration

item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
device = factories.DeviceFactory(item=item)
for n, month in enumerate([(2025, 9), (2026, 5), (2026, 11)], start=1):
    slot = datetime(*month, 3, 17, 24, tzinfo=UTC)
    factories.UsageReportFactory(device=device, slot_start=slot, counted={"barcode_scans": n})

executor = MigrationExecutor(connection)
executor.migrate(executor.loader.graph.leaf_nodes())

with connection.cursor() as cursor:
    cursor.execute("SELECT tableoid::regclass::text, id FROM usage_usagereport ORDER BY id")
    reports = cursor.fetchall()
    cursor.execute("SELECT tableoid::regclass::text, report_id, count FROM usage_usagecount ORDER BY report_id")
    counts = cursor.fetchall()
    cursor.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'usage_usagereport'::regclass"
    )
    months = sorted(name for (name,) in cursor.fetchall())
next_id = factories.UsageReportFactory(device=device, slot_start=datetime(2026, 12, 1, tzinfo=UTC)).pk
executor = MigrationExecutor(connection)
executor.migrate([BEFORE])  # and back: plain tables again
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT relname, relkind FROM pg_class WHERE relname IN ('usage_usagereport', 'usage_usagecount')"
    )
    kinds = dict(cursor.fetchall())
    cursor.execute(
        '''SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid IN ('usage_usagereport'::regclass, 'usage_usagecount'::regclass) AND contype IN ('p', 'u', 'f')
        ORDER BY 1, 2'''
    )
    constraints = cursor.fetchall()
    cursor.execute("SELECT id, report_id, slot_start FROM usage_usagereport ORDER BY id")
    back = [[pk, rid] for pk, rid, _ in cursor.fetchall()]
print(json.dumps({
    "reports": reports, "counts": counts, "months": months, "next_id": next_id,
    "kinds": kinds, "constraints": constraints, "back": back,
}))
"""
)


def test_the_reports_and_counts_keep_their_rows_and_ids_in_their_months(postgres_only, tmp_path):
    out = run_in_scratch_database(tmp_path, SCRIPT)
    assert out["reports"] == [
        ["usage_usagereport_p2025_09", 1],
        ["usage_usagereport_p2026_05", 2],
        ["usage_usagereport_p2026_11", 3],
    ]
    assert out["counts"] == [
        ["usage_usagecount_p2025_09", 1, 1],
        ["usage_usagecount_p2026_05", 2, 2],
        ["usage_usagecount_p2026_11", 3, 3],
    ]
    assert "usage_usagereport_default" in out["months"] and len(out["months"]) >= 3 + 4 + 1
    assert out["next_id"] == 4  # the identity continues after the copied rows
    # Migrated back: plain tables with the same rows, keys without the slot, the counts' FK again.
    assert out["kinds"] == {"usage_usagereport": "r", "usage_usagecount": "r"}
    assert out["back"] == [[1, "r-0"], [2, "r-1"], [3, "r-2"], [4, "r-3"]]
    constraints = [c for _, c in out["constraints"]]
    assert "PRIMARY KEY (id)" in constraints and "UNIQUE (device_id, report_id)" in constraints
    assert "UNIQUE (report_id, metric)" in constraints
    assert any(c.startswith("FOREIGN KEY (report_id) REFERENCES usage_usagereport(id)") for c in constraints)
