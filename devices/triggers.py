"""What the device table's row triggers share (``devices.search``, ``devices.tally``): each of
those modules owns its triggers, their function and what they write; the SQL around them, the
same for both, is written here once."""

from __future__ import annotations

from devices.models import Device


def changed_sql(vendor: str, columns: tuple[str, ...]) -> str:
    """An ``UPDATE`` trigger's condition: one of ``columns`` changed (NULLs compared as values)."""
    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{column} {distinct} NEW.{column}" for column in columns)


def drop_statements(vendor: str, names: tuple[str, ...]) -> list[str]:
    """The SQL that drops the triggers ``names`` of the device table, if they exist."""
    on = f" ON {Device._meta.db_table}" if vendor == "postgresql" else ""
    return [f"DROP TRIGGER IF EXISTS {name}{on}" for name in names]


def uninstall(connection, names: tuple[str, ...], function: str) -> None:
    """Drops the triggers ``names`` and, on PostgreSQL, their ``function``."""
    with connection.cursor() as cursor:
        for sql in drop_statements(connection.vendor, names):
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP FUNCTION IF EXISTS {function}()")
