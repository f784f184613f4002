"""The device search of the portal and the admin API (SPEC 13), and where its text lives.

One text per device, its ``SEARCHED_COLUMNS`` joined by a line feed (a query never holds one: the
portal strips control characters), so "one of these columns contains q" is one condition served
by one trigram index on PostgreSQL instead of four ORed scans.

That text is kept in a table of its own, ``DeviceSearch`` (one row per device), written by
database triggers on the device table only when a device is created, deleted or one of its
searched columns changes. The device row itself carries no trigram index: every usage report
refreshes ``last_seen_at`` and ``active_until``, columns other indexes hold, so the refresh is
never a HOT update and used to write an entry for each of the row's trigrams into the GIN index's
pending list, which every search then scanned (docs/benchmarks.md, "Pages and exports").

- ``containing``: the one home of the search's meaning, used by both searches.
- ``install``: the triggers (PostgreSQL and SQLite), the text of the devices already there and
  the trigram index (PostgreSQL); run by migration devices 0016 (online: the device API keeps
  answering) and, for the test database built from the models, by ``tests/conftest.py``.
  Idempotent.
"""

from __future__ import annotations

from django.db import connection as default_connection
from django.db import models, transaction

from devices import triggers
from devices.models import SEARCHED_COLUMNS, Device, DeviceSearch

INDEX = "device_search_text_trgm"
TRIGGERS = ("device_search_insert", "device_search_update", "device_search_delete")
FUNCTION = "device_search_sync"


def containing(queryset, q: str, columns: tuple[str, ...] = SEARCHED_COLUMNS):
    """The devices of ``queryset`` one of whose ``columns`` (some of ``SEARCHED_COLUMNS``)
    contains ``q``, case-insensitively: their joined text contains ``q`` whenever one of them
    does, so the one trigram index of ``DeviceSearch`` finds the candidates, and the columns
    asked for are then checked one by one (the admin API searches uuid, name and origin, not
    platform; a ``q`` holding a line feed could match across two columns of the joined text)."""
    candidates = queryset.filter(pk__in=DeviceSearch.objects.filter(text__icontains=q).values("device_id"))
    if set(columns) == set(SEARCHED_COLUMNS) and "\n" not in q:
        return candidates
    any_column = models.Q()
    for column in columns:
        any_column |= models.Q(**{f"{column}__icontains": q})
    return candidates.filter(any_column)


def _joined(row: str, vendor: str) -> str:
    """The searched text of the device row ``row`` (``NEW``, ``OLD`` or a table alias) in SQL."""
    line_feed = "E'\\n'" if vendor == "postgresql" else "char(10)"
    return f" || {line_feed} || ".join(f"{row}.{column}" for column in SEARCHED_COLUMNS)


def trigger_statements(vendor: str) -> list[str]:
    """The SQL that installs the triggers for ``vendor`` (and pg_trgm on PostgreSQL)."""
    devices, search = Device._meta.db_table, DeviceSearch._meta.db_table
    columns = ", ".join(SEARCHED_COLUMNS)
    if vendor == "postgresql":
        return [
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            f"""CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM {search} WHERE device_id = OLD.id;
    ELSE
        INSERT INTO {search} (device_id, text) VALUES (NEW.id, {_joined("NEW", vendor)})
        ON CONFLICT (device_id) DO UPDATE SET text = EXCLUDED.text;
    END IF;
    RETURN NULL;
END $$""",
            *triggers.drop_statements(vendor, TRIGGERS),
            f"CREATE TRIGGER device_search_insert AFTER INSERT ON {devices} FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
            f"CREATE TRIGGER device_search_update AFTER UPDATE OF {columns} ON {devices} "
            f"FOR EACH ROW WHEN ({triggers.changed_sql(vendor, SEARCHED_COLUMNS)}) EXECUTE FUNCTION {FUNCTION}()",
            f"CREATE TRIGGER device_search_delete AFTER DELETE ON {devices} FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
        ]
    if vendor == "sqlite":
        write = f"INSERT OR REPLACE INTO {search} (device_id, text) VALUES (NEW.id, {_joined('NEW', vendor)});"
        return [
            *triggers.drop_statements(vendor, TRIGGERS),
            f"CREATE TRIGGER device_search_insert AFTER INSERT ON {devices} BEGIN {write} END",
            f"CREATE TRIGGER device_search_update AFTER UPDATE OF {columns} ON {devices} "
            f"WHEN {triggers.changed_sql(vendor, SEARCHED_COLUMNS)} BEGIN {write} END",
            f"CREATE TRIGGER device_search_delete AFTER DELETE ON {devices} "
            f"BEGIN DELETE FROM {search} WHERE device_id = OLD.id; END",
        ]
    raise NotImplementedError(f"no device search triggers for {vendor}")


def index_sql(vendor: str, *, concurrently: bool = False) -> str | None:
    """The trigram index (PostgreSQL; SQLite scans): on the expression Django compiles
    ``text__icontains`` to, ``UPPER("text"::text)``."""
    if vendor != "postgresql":
        return None
    how = " CONCURRENTLY" if concurrently else ""
    table = DeviceSearch._meta.db_table
    return f"CREATE INDEX{how} IF NOT EXISTS {INDEX} ON {table} USING gin ((UPPER(text)) gin_trgm_ops)"


def backfill_sql(vendor: str) -> str:
    """The text of every device that has none yet (devices made before the triggers). Safe
    beside the triggers: a row they wrote first is kept (a device renamed meanwhile keeps its
    new text), and one this writes first is overwritten by any later change's trigger."""
    devices, search = Device._meta.db_table, DeviceSearch._meta.db_table
    insert, keep = (
        ("INSERT", " ON CONFLICT (device_id) DO NOTHING") if vendor == "postgresql" else ("INSERT OR IGNORE", "")
    )
    return (
        f"{insert} INTO {search} (device_id, text) SELECT d.id, {_joined('d', vendor)} FROM {devices} d "
        f"WHERE NOT EXISTS (SELECT 1 FROM {search} s WHERE s.device_id = d.id){keep}"
    )


def install(connection=None, *, online: bool = False) -> None:
    """Installs the triggers, fills in the text of the devices already there and builds the
    index. ``online`` (migration devices 0016, outside a transaction, PostgreSQL): the triggers
    in a transaction of their own, the only step that blocks writes to the device table (for
    as long as it takes to create three triggers), then the backfill, which only reads the
    devices, then ``CREATE INDEX CONCURRENTLY``; so the device API keeps answering while a
    fleet of a million devices is migrated. Otherwise all in the caller's transaction."""
    connection = connection or default_connection
    vendor = connection.vendor
    index = index_sql(vendor, concurrently=online)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for sql in trigger_statements(vendor):
            cursor.execute(sql)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(backfill_sql(vendor))
    if index:
        with connection.cursor() as cursor:
            if online:  # an interrupted CONCURRENTLY build leaves an invalid index behind
                cursor.execute(
                    "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                    [INDEX],
                )
                row = cursor.fetchone()
                if row and row[0]:
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
            cursor.execute(index)


def uninstall(connection=None) -> None:
    triggers.uninstall(connection or default_connection, TRIGGERS, FUNCTION)
