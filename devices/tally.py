"""A project's devices by state without counting them: the devices page's summary line
("100,000 in all: 90,000 active, 10,000 expired, 0 released; 0 servers").

Counting a project's devices by state is a scan of all of them: 31-34 ms for 100,000 on this
machine's kind, a third of the devices page, and ten times that for a million
(docs/benchmarks.md, "Pages and exports"). Instead, database triggers on the device table append
a ``DeviceTally`` row (+1 for the new project/state/server, -1 for the old) whenever a device is
created, deleted, or its project, state or client type changes; a project's rows summed are its
devices by state as the database has them, in the reader's own snapshot, so the sum is exact.
The usage refresh of a device (every report) changes none of those columns: the trigger's
``UPDATE OF ... WHEN`` does not fire. A trigger only inserts, so no request waits on another
for a tally row, and no lock order with the seat counters (devices.seats) can deadlock.

- ``totals``: the one reader. A device ``active`` whose ``active_until`` has come holds no seat
  (SPEC section 4, ``devices.models.holding_seat_q``) but is still ``active`` in the table until
  the expiry job marks it: those, counted with the index of the expiry job (``ran_out_sql``; a
  minute's worth at most while the job runs), move from active to expired.
- ``compact``: each project's rows folded into one per (state, server), zero sums dropped, so a
  reader sums few rows; a group already folded is not rewritten. Run by the expiry job every minute (``usage.jobs.expire_idle_devices``);
  safe beside the triggers and the readers (PostgreSQL: one statement whose delete and insert
  commit together; SQLite: one transaction, which locks the database).
- ``install``: the triggers (PostgreSQL and SQLite) and the rows of the devices already there,
  in one transaction (creating a trigger blocks writes to the devices until it commits, so no
  device is counted twice or missed); run by migration devices 0017 and, for the test database
  built from the models, by ``tests/conftest.py``. Idempotent.
- ``recount``: the projects whose tally differs from their devices, both read in one statement
  (the repair command and the race tests check it); with ``fix``, each rebuilt from its devices
  in one statement, under the fold's advisory lock (PostgreSQL), so that a repair and a fold
  never both write the same rows' sums (``tests/test_device_tally.py`` runs them at once beside
  new devices).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection as default_connection
from django.db import transaction

from devices import triggers
from devices.models import Device, DeviceTally, ran_out_sql
from devices.prepared import hot_cursor, param

TRIGGERS = ("device_tally_insert", "device_tally_update", "device_tally_delete")
FUNCTION = "device_tally_sync"
TRACKED_COLUMNS = ("project_id", "state", "client_type")
STATES = (Device.ACTIVE, Device.EXPIRED, Device.RELEASED)
SERVER = "server"  # the client type counted as a server (SPEC section 2)


def _tally_row(row: str, sign: int) -> str:
    """The VALUES tuple of a tally row for the device row ``row`` (``NEW`` or ``OLD``)."""
    return f"({row}.project_id, {row}.state, {row}.client_type = '{SERVER}', {sign})"


def _insert(rows: list[str]) -> str:
    return f"INSERT INTO {DeviceTally._meta.db_table} (project_id, state, server, n) VALUES {', '.join(rows)};"


def trigger_statements(vendor: str) -> list[str]:
    """The SQL that installs the triggers for ``vendor``."""
    devices, columns = Device._meta.db_table, ", ".join(TRACKED_COLUMNS)
    update_when = triggers.changed_sql(vendor, TRACKED_COLUMNS)
    if vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_insert([_tally_row("NEW", 1)])}
    ELSIF TG_OP = 'UPDATE' THEN
        {_insert([_tally_row("OLD", -1), _tally_row("NEW", 1)])}
    ELSE
        {_insert([_tally_row("OLD", -1)])}
    END IF;
    RETURN NULL;
END $$""",
            *triggers.drop_statements(vendor, TRIGGERS),
            f"CREATE TRIGGER device_tally_insert AFTER INSERT ON {devices} FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
            f"CREATE TRIGGER device_tally_update AFTER UPDATE OF {columns} ON {devices} "
            f"FOR EACH ROW WHEN ({update_when}) EXECUTE FUNCTION {FUNCTION}()",
            f"CREATE TRIGGER device_tally_delete AFTER DELETE ON {devices} FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
        ]
    if vendor == "sqlite":
        return [
            *triggers.drop_statements(vendor, TRIGGERS),
            f"CREATE TRIGGER device_tally_insert AFTER INSERT ON {devices} BEGIN {_insert([_tally_row('NEW', 1)])} END",
            f"CREATE TRIGGER device_tally_update AFTER UPDATE OF {columns} ON {devices} WHEN {update_when} "
            f"BEGIN {_insert([_tally_row('OLD', -1), _tally_row('NEW', 1)])} END",
            f"CREATE TRIGGER device_tally_delete AFTER DELETE ON {devices} BEGIN {_insert([_tally_row('OLD', -1)])} END",
        ]
    raise NotImplementedError(f"no device tally triggers for {vendor}")


def _rebuild_sql(where: str = "") -> str:
    """The tally rows of the devices (``where``: of some projects), one per (project, state,
    server), from the device table itself."""
    devices, tally = Device._meta.db_table, DeviceTally._meta.db_table
    return (
        f"INSERT INTO {tally} (project_id, state, server, n) "
        f"SELECT d.project_id, d.state, d.client_type = '{SERVER}', COUNT(*) FROM {devices} d {where} "
        f"GROUP BY d.project_id, d.state, d.client_type = '{SERVER}'"
    )


def install(connection=None) -> None:
    """The triggers, and the tally of the devices already there, in the caller's transaction
    (or one of its own): nothing written to the devices meanwhile is missed or counted twice.
    Again on a database that has them: the tally is rebuilt from the devices."""
    connection = connection or default_connection
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for sql in trigger_statements(connection.vendor):
            cursor.execute(sql)
        cursor.execute(f"DELETE FROM {DeviceTally._meta.db_table}")
        cursor.execute(_rebuild_sql())


def totals(project_id: int, *, now: datetime) -> dict[str, int]:
    """The project's devices: ``all``, ``active`` (holding a seat now, SPEC section 4),
    ``expired`` (marked so, or run out and not yet marked), ``released`` and ``servers``; one
    statement, whatever the number of devices."""
    tally, devices = DeviceTally._meta.db_table, Device._meta.db_table

    def of(condition: str) -> str:
        return f"COALESCE(SUM(CASE WHEN {condition} THEN t.n ELSE 0 END), 0)"

    sql = (
        f"SELECT COALESCE(SUM(t.n), 0), {of('t.state = %s')}, {of('t.state = %s')}, {of('t.state = %s')}, "
        f"{of('t.server')}, (SELECT COUNT(*) FROM {devices} d WHERE d.project_id = %s AND {ran_out_sql('d')}) "
        f"FROM {tally} t WHERE t.project_id = %s"
    )
    with hot_cursor() as cursor:
        cursor.execute(sql, [*STATES, project_id, param(now), project_id])
        everything, active, expired, released, servers, ran_out = cursor.fetchone()
    return {
        "all": int(everything),
        "active": int(active) - int(ran_out),
        "expired": int(expired) + int(ran_out),
        "released": int(released),
        "servers": int(servers),
    }


# Folds and repairs take this transaction-level advisory lock (PostgreSQL), so that a fold and a
# repair of the same rows never both write their sums; the triggers do not take it.
FOLD_LOCK = 0x7A11_7A11


def _fold_lock(cursor) -> None:
    if default_connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])


def compact() -> int:
    """Folds each (project, state, server) that has more than one tally row into one, and drops
    zero sums (a deleted project's rows among them); a group already folded is not touched, so a
    run with nothing new writes nothing. The number of rows folded away."""
    table = DeviceTally._meta.db_table
    keys = "project_id, state, server"
    due = f"SELECT {keys} FROM {table} GROUP BY {keys} HAVING COUNT(*) > 1 OR SUM(n) = 0"
    if default_connection.vendor == "postgresql":
        # One statement, one snapshot: the rows it deletes are the rows it sums; a row a trigger
        # commits meanwhile is neither, and stays.
        sql = (
            f"WITH due AS ({due}), "
            f"gone AS (DELETE FROM {table} t USING due WHERE t.project_id = due.project_id "
            "AND t.state = due.state AND t.server = due.server RETURNING t.project_id, t.state, t.server, t.n), "
            f"kept AS (INSERT INTO {table} ({keys}, n) SELECT {keys}, SUM(n) FROM gone GROUP BY {keys} "
            "HAVING SUM(n) <> 0 RETURNING 1) "
            "SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM kept)"
        )
        with transaction.atomic(), default_connection.cursor() as cursor:
            _fold_lock(cursor)
            cursor.execute(sql)
            return int(cursor.fetchone()[0])
    with transaction.atomic(), default_connection.cursor() as cursor:  # SQLite: the database is locked
        cursor.execute(
            f"SELECT {keys}, SUM(n), COUNT(*) FROM {table} GROUP BY {keys} HAVING COUNT(*) > 1 OR SUM(n) = 0"
        )
        groups = cursor.fetchall()
        if not groups:
            return 0
        cursor.executemany(
            f"DELETE FROM {table} WHERE project_id = %s AND state = %s AND server = %s",
            [(project, state, server) for project, state, server, _, _ in groups],
        )
        kept = [(project, state, server, n) for project, state, server, n, _ in groups if n]
        if kept:
            cursor.executemany(f"INSERT INTO {table} ({keys}, n) VALUES (%s, %s, %s, %s)", kept)
        return sum(count for *_, count in groups) - len(kept)


def recount(*, fix: bool = True) -> list[tuple[int, str, bool, int, int]]:
    """(project id, state, server, tally, devices) for every count the tally has wrong, both
    sides read in one statement (one snapshot); with ``fix``, each project concerned is rebuilt
    from its devices in one statement (its rows deleted and rebuilt in the same snapshot, so a
    device changed meanwhile is counted once: its trigger's rows stay), under the fold's lock."""
    devices, tally = Device._meta.db_table, DeviceTally._meta.db_table
    sql = (
        "SELECT project_id, state, server, SUM(t), SUM(d) FROM ("
        f"SELECT project_id, state, server, n AS t, 0 AS d FROM {tally} UNION ALL "
        f"SELECT project_id, state, client_type = '{SERVER}', 0, 1 FROM {devices}"
        ") x GROUP BY project_id, state, server HAVING SUM(t) <> SUM(d) ORDER BY project_id, state, server"
    )
    with default_connection.cursor() as cursor:
        cursor.execute(sql)
        wrong = [(int(p), state, bool(server), int(t), int(d)) for p, state, server, t, d in cursor.fetchall()]
    if fix:
        rebuild = f"{_rebuild_sql('WHERE d.project_id = %s')}"
        for project_id in sorted({p for p, *_ in wrong}):
            with transaction.atomic(), default_connection.cursor() as cursor:
                _fold_lock(cursor)
                if default_connection.vendor == "postgresql":
                    cursor.execute(
                        f"WITH gone AS (DELETE FROM {tally} WHERE project_id = %s) {rebuild}", [project_id, project_id]
                    )
                else:  # SQLite: the transaction locks the database
                    cursor.execute(f"DELETE FROM {tally} WHERE project_id = %s", [project_id])
                    cursor.execute(rebuild, [project_id])
    return wrong


def uninstall(connection=None) -> None:
    triggers.uninstall(connection or default_connection, TRIGGERS, FUNCTION)
