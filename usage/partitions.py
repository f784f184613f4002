"""Usage reports and their counts partitioned by month of ``slot_start`` on PostgreSQL
(docs/benchmarks.md "Partitioning", docs/operations.md "Usage partitions"); SQLite keeps plain
tables and nothing here runs there.

- ``partition_tables``: turns the plain ``usage_usagereport`` and ``usage_usagecount`` into
  range-partitioned tables with the same columns, indexes and foreign keys to devices and items,
  one partition per month that holds rows plus the months around ``now``, and a default
  partition for anything outside them (a report is never refused for its slot's month). Run by
  migration 0007 and, for the test database built from the models, by ``tests/conftest.py``.
- ``ensure_partitions``: the months from 31 days before ``now`` (a report may carry a slot up to
  30 days old, SPEC section 6) to ``AHEAD_MONTHS`` after it; a month whose rows already went to
  the default partition has them moved into its new partition. A step of ``purge_old_data``.
- ``drop_partitions``: drops each month whose every report was received before the cutoff: a
  catalog change, not a ``DELETE``.

What the partition key costs the schema: a unique constraint must include it, so the primary keys
are ``(id, slot_start)`` and the report's uniqueness is ``(device_id, report_id, slot_start)``;
``(device, report_id)`` across slots is kept by the hot path (``usage.hot_sql.insert_report``,
after the device row is locked). ``UsageCount.report`` has no foreign key in the database (one
into a partitioned table makes every month's drop scan the counts): a report and its counts are
written by one statement and dropped by month together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.utils import OperationalError

from usage.models import UsageCount, UsageReport

KEY = "slot_start"
AHEAD_MONTHS = 3
# A report's slot may be this old when it arrives (SPEC section 6: 30 days), plus a day.
BEHIND = timedelta(days=31)
# How long a drop or an attach waits for its lock before giving up until the next run: both take
# a lock on the parent that queues every report behind it while it waits.
LOCK_TIMEOUT = "3s"
# Serializes partition maintenance between copies of the job (any 64-bit constant of our own).
ADVISORY_LOCK = 7_310_442_015


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: the default partition
    end: datetime | None


def tables() -> list[str]:
    """The partitioned tables, the counts' first (they are dropped before their reports)."""
    return [UsageCount._meta.db_table, UsageReport._meta.db_table]


def month_start(dt: datetime) -> datetime:
    dt = dt.astimezone(UTC)
    return datetime(dt.year, dt.month, 1, tzinfo=UTC)


def next_month(dt: datetime) -> datetime:
    return datetime(dt.year + dt.month // 12, dt.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y_%m}"


def months_around(now: datetime) -> list[datetime]:
    """The months ``ensure_partitions`` keeps ready at ``now``."""
    month, months = month_start(now - BEHIND), []
    last = month_start(now)
    for _ in range(AHEAD_MONTHS):
        last = next_month(last)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _fetch(sql: str, params: list | tuple = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _run(sql: str, params: list | tuple = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def is_partitioned(table: str) -> bool:
    return bool(_fetch("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table]))


def partitions(table: str) -> list[Partition]:
    """The partitions of ``table``, range ones by start, the default last."""
    rows = _fetch(
        """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(%s)""",
        [table],
    )
    found = []
    for name, bound in rows:
        if bound == "DEFAULT":
            found.append(Partition(name, None, None))
            continue
        low, high = _fetch(f"SELECT {_bound_sql(bound, 'FROM')}, {_bound_sql(bound, 'TO')}")[0]
        found.append(Partition(name, low, high))
    return sorted(found, key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))


def _bound_sql(bound: str, which: str) -> str:
    """The timestamptz literal of ``FOR VALUES FROM ('...') TO ('...')``, as SQL."""
    part = bound.split(f"{which} (", 1)[1].split(")", 1)[0]
    return f"{part}::timestamptz"


def _default_name(table: str) -> str:
    return f"{table}_default"


def _columns(table: str) -> str:
    rows = _fetch(
        """SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0
        AND NOT attisdropped ORDER BY attnum""",
        [table],
    )
    return ", ".join(_q(name) for (name,) in rows)


# --- turning the plain tables into partitioned ones (migration 0007) ----------------------------


def partition_tables(*, now: datetime) -> list[str]:
    """Partition the tables that are not yet (PostgreSQL only; idempotent); the tables done."""
    if connection.vendor != "postgresql":
        return []
    done: list[str] = []
    with transaction.atomic():
        # Both tables get the same months: a report's counts share its slot_start, and a month's
        # counts and reports are dropped together.
        months = set(months_around(now))
        for table in tables():
            months |= _months_holding_rows(table)
        for table in reversed(tables()):  # the reports first: dropping the old one drops the counts' FK
            if not is_partitioned(table):
                _convert(table, months=months)
                done.append(table)
    return done


def _months_holding_rows(table: str) -> set[datetime]:
    if is_partitioned(table):
        return {p.start for p in partitions(table) if p.start is not None}
    return {month_start(m) for (m,) in _fetch(f"SELECT DISTINCT date_trunc('month', {KEY}, 'UTC') FROM {_q(table)}")}


def _catalog(table: str) -> tuple[list[tuple], list[tuple]]:
    """The table's own indexes (name, definition; not those backing a constraint) and its keys,
    unique and foreign-key constraints (name, kind, definition, referenced table), to build again
    on the table that replaces it."""
    indexes = _fetch(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = %s
        AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s))""",
        [table, table],
    )
    constraints = _fetch(
        """SELECT conname, contype, pg_get_constraintdef(oid), confrelid::regclass::text
        FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u', 'f') ORDER BY conname""",
        [table],
    )
    return indexes, constraints


def _convert(table: str, *, months: set[datetime]) -> None:
    old = f"{table}__plain"
    indexes, constraints = _catalog(table)
    _run(f"ALTER TABLE {_q(table)} RENAME TO {_q(old)}")
    _run(
        f"""CREATE TABLE {_q(table)} (LIKE {_q(old)} INCLUDING DEFAULTS INCLUDING IDENTITY
        INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({KEY})"""
    )
    for month in sorted(months):
        _create(table, month)
    _run(f"CREATE TABLE {_q(_default_name(table))} PARTITION OF {_q(table)} DEFAULT")
    columns = _columns(old)
    _run(f"INSERT INTO {_q(table)} ({columns}) SELECT {columns} FROM {_q(old)}")
    sequence = _fetch("SELECT pg_get_serial_sequence(%s, 'id')", [table])[0][0]
    _run(f"SELECT setval(%s, COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {_q(table)}", [sequence])
    _run(f"DROP TABLE {_q(old)} CASCADE")  # CASCADE: the counts' foreign key into the reports
    _run(f"ALTER SEQUENCE {sequence} RENAME TO {_q(f'{table}_id_seq')}")
    for name, kind, definition, target in constraints:
        if kind == "f" and target == UsageReport._meta.db_table:
            continue  # no foreign key into a partitioned table (module docstring)
        if kind in ("p", "u"):
            columns_of = definition.split("(", 1)[1].rsplit(")", 1)[0]
            if KEY not in [c.strip() for c in columns_of.split(",")]:
                definition = f"{definition.split('(', 1)[0]}({columns_of}, {KEY})"
        _run(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")
    for _name, definition in indexes:
        _run(definition)


def unpartition_tables() -> list[str]:
    """Migration 0009 reversed: plain tables again, with the same rows, the keys and unique
    constraints without the partition key (PostgreSQL only; idempotent); the tables done. The
    counts' foreign key into the reports is the caller's (it has Django's name for it)."""
    if connection.vendor != "postgresql":
        return []
    done: list[str] = []
    with transaction.atomic():
        for table in tables():
            if is_partitioned(table):
                _unpartition(table)
                done.append(table)
    return done


def _unpartition(table: str) -> None:
    old = f"{table}__partitioned"
    indexes, constraints = _catalog(table)
    _run(f"ALTER TABLE {_q(table)} RENAME TO {_q(old)}")
    _run(
        f"""CREATE TABLE {_q(table)} (LIKE {_q(old)} INCLUDING DEFAULTS INCLUDING IDENTITY
        INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)"""
    )
    columns = _columns(old)
    _run(f"INSERT INTO {_q(table)} ({columns}) SELECT {columns} FROM {_q(old)}")
    sequence = _fetch("SELECT pg_get_serial_sequence(%s, 'id')", [table])[0][0]
    _run(f"SELECT setval(%s, COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {_q(table)}", [sequence])
    _run(f"DROP TABLE {_q(old)} CASCADE")  # its partitions with it
    _run(f"ALTER SEQUENCE {sequence} RENAME TO {_q(f'{table}_id_seq')}")
    for name, kind, definition, _target in constraints:
        if kind in ("p", "u"):
            definition = definition.replace(f", {KEY})", ")")
        _run(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")
    for _name, definition in indexes:
        _run(definition.replace(" ON ONLY ", " ON "))


def _create(table: str, month: datetime) -> None:
    _run(
        f"CREATE TABLE {_q(partition_name(table, month))} PARTITION OF {_q(table)} FOR VALUES FROM (%s) TO (%s)",
        [month, next_month(month)],
    )


# --- maintenance (purge_old_data) -------------------------------------------------------------


def _raise_unless_lock_timeout(error: OperationalError) -> None:
    if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
        raise error


def _lock_maintenance() -> None:
    _run("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK])
    _run(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def ensure_partitions(*, now: datetime) -> dict:
    """Create the months of ``months_around(now)`` that are missing, moving their rows out of the
    default partition if any went there; ``{"partitions_created": n, "rows_moved": n}``."""
    created = moved = 0
    if connection.vendor != "postgresql" or not is_partitioned(UsageReport._meta.db_table):
        return {"partitions_created": 0, "rows_moved": 0}
    for month in months_around(now):
        for table in tables():
            try:
                with transaction.atomic():
                    _lock_maintenance()
                    if any(p.start == month for p in partitions(table)):
                        continue
                    moved += _attach(table, month)
                    created += 1
            except OperationalError as error:  # lock_timeout: the default partition is busy; the next run
                _raise_unless_lock_timeout(error)
    return {"partitions_created": created, "rows_moved": moved}


def _attach(table: str, month: datetime) -> int:
    """A new month as a table of its own, the default partition's rows of that month moved into
    it, then attached: ``ATTACH`` takes a lock that lets reports into other months go on (where
    ``CREATE TABLE ... PARTITION OF`` would lock the whole table while it scans the default)."""
    name, default, end = partition_name(table, month), _default_name(table), next_month(month)
    _run(f"LOCK TABLE {_q(default)} IN ACCESS EXCLUSIVE MODE")  # no stray of that month arrives meanwhile
    _run(f"CREATE TABLE {_q(name)} (LIKE {_q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)")
    columns = _columns(table)
    moved = _run(
        f"""WITH moved AS (DELETE FROM {_q(default)} WHERE {KEY} >= %s AND {KEY} < %s RETURNING {columns})
        INSERT INTO {_q(name)} ({columns}) SELECT {columns} FROM moved""",
        [month, end],
    )
    _run(f"ALTER TABLE {_q(table)} ATTACH PARTITION {_q(name)} FOR VALUES FROM (%s) TO (%s)", [month, end])
    return moved


def drop_partitions(*, cutoff: datetime) -> dict:
    """Drop each month (its counts and its reports together) that ends before ``cutoff`` and
    whose latest report was received before it; ``{"partitions_dropped": months dropped,
    "partitions_waiting": months whose lock was busy}``. The default partition stays."""
    dropped = waiting = 0
    if connection.vendor != "postgresql" or not is_partitioned(UsageReport._meta.db_table):
        return {"partitions_dropped": 0, "partitions_waiting": 0}
    report = UsageReport._meta.db_table
    for part in partitions(report):
        if part.start is None or part.end is None or part.end > cutoff:
            continue
        (latest,) = _fetch(f"SELECT MAX(received_at) FROM {_q(part.name)}")[0]
        if latest is not None and latest >= cutoff:
            continue  # a late report of that month is still within retention
        try:
            with transaction.atomic():
                _lock_maintenance()
                if not _fetch("SELECT to_regclass(%s)", [part.name])[0][0]:
                    continue  # another copy of the job dropped it meanwhile
                for table in tables():
                    _run(f"DROP TABLE IF EXISTS {_q(partition_name(table, part.start))}")
            dropped += 1
        except OperationalError as error:  # lock_timeout: a long reader holds the table; the next run
            _raise_unless_lock_timeout(error)
            waiting += 1
    return {"partitions_dropped": dropped, "partitions_waiting": waiting}


def rows_purged_one_by_one() -> str:
    """The table ``purge_old_data`` deletes expired reports from row by row: the default
    partition on PostgreSQL (the months go by ``drop_partitions``), the plain table on SQLite."""
    table = UsageReport._meta.db_table
    if connection.vendor == "postgresql" and is_partitioned(table):
        return _default_name(table)
    return table
