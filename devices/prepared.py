"""Querysets compiled once per database connection, for the device API's hot paths
(docs/benchmarks.md, "Hot path").

Building a queryset and compiling it to SQL costs the ORM more CPU than the database spends
running it: for the usage report's one read (device, project, item, license and three
subqueries) it was over half of the request. A ``Prepared`` statement is the ORM's own SQL for
a queryset, compiled the first time a connection runs it with *sentinel* values where a
request's values go, then executed with each request's values in their places. The rules the
queryset is written with (consumption order, holding a seat, ...) stay in their homes and are
called to build it; the SQL sent is exactly what the ORM would send.

A sentinel must reach the SQL as a parameter (not folded into the text) and unchanged but for
the backend's own adaptation (``param``); one that does not appear is an error, found the
first time the statement is compiled (the tests run every prepared statement on both
backends). Rows become model instances the way the ORM makes them (``from_db``, the
``select_related`` objects, annotations, the backend's converters).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery


def param(value):
    """A parameter for raw SQL: datetimes in the form the backend stores (SQLite: naive UTC text)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def hot_cursor():
    """A cursor for a hot-path statement. On PostgreSQL (``HOT_SQL_PREPARED``, the default) its
    parameters are bound on the server and the statement is prepared the first time a connection
    runs it: the database parses and plans it once per connection instead of once per request,
    and psycopg no longer quotes each parameter into the text. Other statements keep Django's
    client-side binding. Through Django's cursor wrapper all the same: query logging, the
    execute wrappers (statement counts) and error translation are the ORM's."""
    if connection.vendor != "postgresql" or not settings.HOT_SQL_PREPARED:
        return connection.cursor()
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None:  # Django turns preparing off for the connection: on, for these
        raw.prepare_threshold = PREPARE_THRESHOLD
    db.validate_thread_sharing()
    cursor = _preparing_cursor()(raw)
    # As connection.cursor() wraps its cursor; logged with the SQL as sent and its parameters
    # (Django composes the text from psycopg's client-side query, which a prepared one has not).
    return _LoggedAsSent(cursor, db) if db.queries_logged else CursorWrapper(cursor, db)


class _LoggedAsSent(CursorDebugWrapper):
    @contextmanager
    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        with super().debug_sql(sql, params, use_last_executed_query=False, many=many):
            yield


def for_update_sql(*, skip_locked: bool = False) -> str:
    """`` FOR UPDATE`` (``SKIP LOCKED``) for raw SQL where the database has row locks; nothing on
    SQLite, which locks the whole database on a transaction's first write instead."""
    if not connection.features.has_select_for_update:
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


# psycopg prepares a statement a connection has run this many times; the hot cursor asks for it
# on the first run (``prepare=True``), and Django's own (client-binding) cursors never prepare.
PREPARE_THRESHOLD = 5
_PREPARING: list = []


def _preparing_cursor():
    """psycopg's server-binding cursor (Django's own class for ``server_side_binding``) whose
    ``execute`` prepares by default."""
    if not _PREPARING:
        from django.db.backends.postgresql import base

        server_binding: Any = base.ServerBindingCursor  # (not in the stubs)

        class PreparingCursor(server_binding):
            def execute(self, query, params=None, *, prepare=True, binary=None):
                return super().execute(query, params, prepare=prepare, binary=binary)

        _PREPARING.append(PreparingCursor)
    return _PREPARING[0]


def sentinel_datetime(n: int) -> datetime:
    """A datetime no request sends (year 1111), distinct for each ``n``."""
    return datetime(1111, 1, 1, 0, 0, n, tzinfo=UTC)


class _Compiled:
    def __init__(self, sql: str, params, slots: list[tuple[int, str]], compiler) -> None:
        self.sql, self.params, self.slots, self.compiler = sql, list(params), slots, compiler
        self.converters = None

    def bind(self, values: dict[str, Any]) -> list:
        params = list(self.params)
        for position, name in self.slots:
            value, compiled = param(values[name]), self.params[position]
            # The backend's own integer wrapper kept (psycopg's Int2 for a small-integer column).
            params[position] = type(compiled)(value) if _wrapped_int(compiled) else value
        return params


def _wrapped_int(value) -> bool:
    return isinstance(value, int) and type(value) not in (int, bool)


def _slots(params, sentinels: dict[str, Any], what: str) -> list[tuple[int, str]]:
    adapted = {name: param(value) for name, value in sentinels.items()}
    slots = [
        (i, name)
        for i, p in enumerate(params)
        for name, value in adapted.items()
        if (type(p) is type(value) or (_wrapped_int(p) and type(value) is int)) and p == value
    ]
    missing = set(sentinels) - {name for _, name in slots}
    if missing:
        raise AssertionError(f"{what}: the sentinels {sorted(missing)} are not parameters of its SQL")
    return slots


def _cache() -> dict:
    # Per connection (the thread's own wrapper, not the proxy): a connection belongs to one
    # thread, and its vendor decides the SQL.
    wrapper = connections[DEFAULT_DB_ALIAS]
    cache = wrapper.__dict__.get("_prepared_statements")
    if cache is None:
        cache = wrapper.__dict__["_prepared_statements"] = {}
    return cache


class Prepared:
    """A read: ``build(**sentinels)`` returns the queryset; ``rows(**values)`` runs its SQL with
    the request's values and returns the model instances iterating the queryset would give."""

    def __init__(self, name: str, build: Callable[..., QuerySet], **sentinels: Any) -> None:
        self.name, self.build, self.sentinels = name, build, sentinels

    def _compiled(self) -> _Compiled:
        compiled = _cache().get(self.name)
        if compiled is None:
            compiler = self.build(**self.sentinels).query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            compiled = _Compiled(sql, params, _slots(params, self.sentinels, self.name), compiler)
            compiled.converters = compiler.get_converters([s[0] for s in compiler.select])
            _cache()[self.name] = compiled
        return compiled

    def rows(self, **values: Any) -> list:
        compiled = self._compiled()
        compiler = compiled.compiler
        with hot_cursor() as cursor:
            cursor.execute(compiled.sql, compiled.bind(values))
            rows = cursor.fetchall()
        if compiled.converters:
            rows = list(compiler.apply_converters(rows, compiled.converters))
        select, klass_info, annotations = compiler.select, compiler.klass_info, compiler.annotation_col_map
        model = klass_info["model"]
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        names = [s[0].target.attname for s in select[first:last]]
        related = get_related_populators(klass_info, select, connection.alias)  # type: ignore[call-arg]  # the stubs are a newer Django's
        objects = []
        for row in rows:
            obj = model.from_db(connection.alias, names, row[first:last])
            for populator in related:
                populator.populate(row, obj)
            for attr, position in (annotations or {}).items():
                setattr(obj, attr, row[position])
            objects.append(obj)
        return objects


class PreparedUpdate:
    """A write: ``build(**sentinels)`` returns ``(queryset, changes)``; ``run(**values)`` runs
    the ``UPDATE`` of ``queryset.update(**changes)`` with the request's values and returns the
    number of rows it changed."""

    def __init__(self, name: str, build: Callable[..., tuple[QuerySet, dict[str, Any]]], **sentinels: Any) -> None:
        self.name, self.build, self.sentinels = name, build, sentinels

    def run(self, **values: Any) -> int:
        compiled = _cache().get(self.name)
        if compiled is None:
            queryset, changes = self.build(**self.sentinels)
            query = queryset.query.chain(UpdateQuery)
            query.add_update_values(changes)  # type: ignore[attr-defined]  # chain() made it an UpdateQuery
            compiler = query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            compiled = _Compiled(sql, params, _slots(params, self.sentinels, self.name), compiler)
            _cache()[self.name] = compiled
        with hot_cursor() as cursor:
            cursor.execute(compiled.sql, compiled.bind(values))
            return cursor.rowcount


M = TypeVar("M", bound=Model)


class PreparedInsert(Generic[M]):
    """``model.objects.create(**values)`` with its ``INSERT`` compiled once per connection: the
    columns ``save()`` writes for a new row, each value prepared by its field as ``save()``
    prepares it (``pre_save``, ``get_db_prep_save``), the database's defaults returned
    (``RETURNING`` the id). ``save()`` itself is not called, so no ``pre_save``/``post_save``
    signal is sent: the models it serves (``Device``, ``Decision``) have no receivers. A value
    that is an expression goes through the ORM's ``create``."""

    def __init__(self, model: type[M]) -> None:
        self.model, self.name = model, f"insert {model._meta.label}"

    def create(self, **values: Any) -> M:
        if not connection.features.can_return_columns_from_insert:  # SQLite before 3.35
            return self.model._default_manager.create(**values)
        obj = self.model(**values)
        meta = self.model._meta
        compiled = _cache().get(self.name)
        if compiled is None:
            fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
            query = InsertQuery(self.model)
            query.insert_values(fields, [obj])
            compiler = query.get_compiler(connection=connection)
            compiler.returning_fields = meta.db_returning_fields
            [(sql, params)] = compiler.as_sql()
            if len(params) != len(fields):
                raise AssertionError(f"{self.name}: not one parameter per column")
            compiled = _cache()[self.name] = (sql, fields, compiler)
        sql, fields, compiler = compiled
        params = [compiler.prepare_value(f, compiler.pre_save_val(f, obj)) for f in fields]
        if any(hasattr(p, "as_sql") for p in params):
            return self.model._default_manager.create(**values)
        with hot_cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        for field, value in zip(meta.db_returning_fields, row, strict=True):
            setattr(obj, field.attname, value)
        obj._state.adding, obj._state.db = False, connection.alias
        return obj


def update_where(model: type[Model], values: dict[str, Any], where: dict[str, Any]) -> int:
    """``model.objects.filter(**where).update(**values)`` for plain values and equality filters
    on the model's own fields (``None`` in ``where`` is ``IS NULL``): each value prepared by its
    field as the ORM's update prepares it (``get_db_prep_save``; a related instance by its key),
    sent through ``hot_cursor`` (prepared on PostgreSQL) instead of an ``UpdateQuery`` built and
    compiled anew. The number of rows it changed. The statement's text depends only on the names
    given, so a connection prepares each combination once."""
    meta = model._meta

    def qn(field) -> str:
        return connection.ops.quote_name(field.column)

    sets, params = [], []
    for name, value in values.items():
        field = meta.get_field(name)
        if hasattr(value, "as_sql") or hasattr(value, "resolve_expression"):
            raise TypeError(f"update_where: {name} is an expression; use the ORM's update")
        if field.is_relation and isinstance(value, Model):
            value = value.pk
        sets.append(f"{qn(field)} = %s")
        params.append(field.get_db_prep_save(value, connection))  # type: ignore[union-attr]
    conditions = []
    for name, value in where.items():
        field = meta.get_field(name)
        if value is None:
            conditions.append(f"{qn(field)} IS NULL")
        else:
            conditions.append(f"{qn(field)} = %s")
            params.append(field.get_db_prep_value(value, connection))  # type: ignore[union-attr]
    sql = f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(conditions)}"
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
