"""Raw SQL helpers for the jobs: the same statements on PostgreSQL and SQLite.

Datetime parameters are adapted to the form each backend stores (SQLite: naive UTC text), and
bucket boundaries are computed in SQL from the UTC epoch, so GROUP BY happens in the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def param(value):
    """A parameter for raw SQL: datetimes in the form the backend stores (SQLite: naive UTC text)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def floor_sql(col: str, seconds: int, plus: int = 0) -> str:
    """SQL for the UTC-epoch-aligned start of the ``seconds`` long bucket holding ``col``
    (``plus`` seconds later). Both backends; literal % doubled for parameterised queries."""
    if connection.vendor == "postgresql":
        return f"to_timestamp(floor(extract(epoch from {col}) / {seconds}) * {seconds} + {plus})"
    return (
        f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', "
        f"(CAST(strftime('%%s', {col}) AS INTEGER) / {seconds}) * {seconds} + {plus}, 'unixepoch')"
    )


def json_int_sql(col: str, key_sql: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(({col} ->> {key_sql}) AS bigint)"
    return f"CAST(json_extract({col}, '$.' || {key_sql}) AS INTEGER)"


def execute(sql: str, params: Sequence = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, [param(v) for v in params])
        return max(cursor.rowcount, 0)


def fetchall(sql: str, params: Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [param(v) for v in params])
        return cursor.fetchall()


def claim(model, columns: Sequence[str], conflict: Sequence[str], rows: Iterable[Sequence]) -> list[tuple]:
    """INSERT the rows, skipping those the unique constraint already holds; return the
    ``conflict`` columns of the rows this call inserted (its claims)."""
    rows = [list(r) for r in rows]
    if not rows:
        return []
    q = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {table(model)} ({', '.join(q(c) for c in columns)}) VALUES "
        + ", ".join([placeholders] * len(rows))
        + f" ON CONFLICT ({', '.join(q(c) for c in conflict)}) DO NOTHING"
        + f" RETURNING {', '.join(q(c) for c in conflict)}"
    )
    return fetchall(sql, [v for r in rows for v in r])
