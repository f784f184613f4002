"""Quota counters (SPEC section 4): the running total of one metric of one item (scans, pages
per module), kept so that the reports of one hot item do not wait on each other.

A report is decided on the item's total including itself, and that total must be exact: with
one counter row, every report of the item locks the row from its upsert to its commit, the
commit's WAL flush included, so one item takes one report per flush (docs/benchmarks.md, "What
bounds each figure": 400-700 a second on this machine's disk, below the 555 reports/s of a
100,000-device fleet). So the total is split:

    total = QuotaCounter.used + the sum of its SHARDS QuotaShard.used

and a report adds to one share, its device's (``shard_of``), in one conditional UPDATE that
locks that share only:

- while the share stays within its allotment (``used + n <= allot``), the report is below the
  limit whatever the other shares take at the same moment: the counter and the allotments of
  its shares never sum past ``limit - 1`` (``limit``: ``LicenseItem.quota_refused_from``, the
  smallest total refused), so every total in any order of the concurrent reports is below it;
- a share granted after the total had reached the limit is ``exhausted``: totals only grow, so
  every later report is at or past the limit, refused;
- a report that fits neither (its share's headroom is spent, the limit changed since the grant,
  or the item has no shares yet) rolls back and runs again the exact way (``ExactWayFirst``): it
  locks the counter row, then every share in order (waiting for the reports in flight on
  them), folds the shares into the counter,
  is decided on the exact total and grants new allotments: the headroom left split evenly,
  none once it is smaller than the number of shares (then every report near the limit goes this
  way, one at a time, as with one row).

So each report's verdict is the one it would get on the exact total including itself in some
order of the concurrent reports (the race tests count exactly), and a far-from-the-limit item's
reports lock one of SHARDS rows each. ``remaining`` in an answer is as of the report's read, as
before. Overuse spent (concurrent items, counted under the item lock) stays on the counter row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import connection
from django.db.models import BigIntegerField, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Cast, Coalesce

from devices.models import QuotaCounter, QuotaShard
from devices.prepared import for_update_sql, hot_cursor

SHARDS = 16
# The limit of a metric the item sets none for (a page module it does not license: refused by
# ``quota_verdict`` whatever the total).
UNLIMITED = 2**62


def shard_of(device_id: int) -> int:
    return device_id % SHARDS


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def totals_sql(counter_alias: str) -> str:
    """SQL for the total of the counter row ``counter_alias`` (of ``QuotaCounter``'s table):
    its ``used`` plus its shares'."""
    shard = _t(QuotaShard)
    return (
        f"({counter_alias}.used + CAST(COALESCE((SELECT SUM(s.used) FROM {shard} s"
        f" WHERE s.item_id = {counter_alias}.item_id AND s.metric = {counter_alias}.metric), 0) AS BIGINT))"
    )


def share_json_sql(item_column: str, device_column: str) -> str:
    """SQL for the device's share of each of the item's counters as of the read, as JSON text:
    {metric: [used, allot, granted_limit, exhausted]} (``read_share`` parses it), so a report
    that will not fit it goes the exact way at once instead of rolling back first. No ``%``
    parameter: the modulo is doubled for a parameterised query."""
    shard = _t(QuotaShard)
    where = f"s.item_id = {item_column} AND s.shard = {device_column} %% {SHARDS}"
    if connection.vendor == "postgresql":
        row = "json_build_array(s.used, s.allot, s.granted_limit, s.exhausted)"
        return f"(SELECT json_object_agg(s.metric, {row})::text FROM {shard} s WHERE {where})"
    row = "json_array(s.used, s.allot, s.granted_limit, s.exhausted)"
    return f"(SELECT json_group_object(s.metric, json({row})) FROM {shard} s WHERE {where})"


def read_share(raw: str | None) -> dict[str, tuple[int, int, int, bool]]:
    return {m: (int(u), int(a), int(g), bool(e)) for m, (u, a, g, e) in json.loads(raw).items()} if raw else {}


def totals_table_sql() -> str:
    """A derived table of every counter with its total: (item_id, metric, used)."""
    return f"(SELECT qc.item_id, qc.metric, {totals_sql('qc')} AS used FROM {_t(QuotaCounter)} qc)"


def with_totals(counters: QuerySet | None = None) -> QuerySet:
    """``QuotaCounter`` rows annotated ``total`` (the counter's ``used`` plus its shares')."""
    shares = (
        QuotaShard.objects.filter(item_id=OuterRef("item_id"), metric=OuterRef("metric"))
        .order_by()
        .values("item_id", "metric")
        .annotate(n=Sum("used"))
        .values("n")
    )
    qs = QuotaCounter.objects.all() if counters is None else counters
    return qs.annotate(
        total=Cast(F("used") + Coalesce(Subquery(shares, output_field=BigIntegerField()), 0), BigIntegerField())
    )


def totals(item_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """{(item id, metric): total} of these items' counters."""
    ids = list(item_ids)
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.item_id, t.metric, t.used FROM {totals_table_sql()} t WHERE t.item_id IN ("
            + ", ".join(["%s"] * len(ids))
            + ")",
            ids,
        )
        return {(item_id, metric): int(used) for item_id, metric, used in cursor.fetchall()}


def values(item_id: int) -> dict[str, int]:
    """{metric: total} of one item's counters."""
    return {metric: n for (_, metric), n in totals([item_id]).items()}


def _fits(share: tuple[int, int, int, bool] | None, n: int, limit: int) -> bool:
    """The share (as read) takes ``n``: the test of ``add``'s conditional UPDATE, in Python."""
    if share is None:
        return False
    used, allot, granted_limit, exhausted = share
    return granted_limit == limit and (exhausted or used + n <= allot)


class ExactWayFirst(Exception):
    """The report did not fit its share: its transaction rolls back and runs again with
    ``exact=True`` (the caller's retry). Not taken in the same transaction, because the failed
    UPDATE may keep the share locked (PostgreSQL keeps the lock of a row it re-checked after
    waiting for another transaction), and waiting for the counter while holding a share would
    deadlock with a report folding the shares (counter first, then every share)."""


def add(
    item_id: int,
    amounts: dict[str, int],
    *,
    shard: int,
    limits: dict[str, int],
    predicted: dict[str, int],
    share: dict[str, tuple[int, int, int, bool]] | None = None,
    exact: bool = False,
) -> dict[str, int]:
    """Add ``amounts`` (metric -> n > 0) to the item's counters for a report of a device mapped
    to ``shard``; ``limits``: metric -> the smallest total refused (every metric of
    ``amounts``). Returns metric -> a total to decide the report on: the exact total when it
    took the exact way; else, for a metric within its share's allotment, ``predicted[metric]``
    (the total as read plus n, below the limit since the allotment is), and for an exhausted
    share at least the limit."""
    metrics = sorted((m, n) for m, n in amounts.items() if n)
    if not metrics:
        return {}
    shard_table = _t(QuotaShard)
    cases = " ".join("WHEN %s THEN %s" for _ in metrics)
    fits = " OR ".join("(metric = %s AND granted_limit = %s AND (exhausted OR used + %s <= allot))" for _ in metrics)
    limits = {m: limits.get(m, UNLIMITED) for m, _ in metrics}
    if share is not None and not all(_fits(share.get(m), n, limits[m]) for m, n in metrics):
        exact = True  # as read, the share cannot take it: no UPDATE to roll back
    if exact:
        return _fold(item_id, dict(metrics), [m for m, _ in metrics], limits)
    params: list = [v for m, n in metrics for v in (m, n)]
    params += [item_id, shard]
    params += [v for m, n in metrics for v in (m, limits[m], n)]
    with hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {shard_table} SET used = used + CASE metric {cases} END"
            f" WHERE item_id = %s AND shard = %s AND ({fits}) RETURNING metric, exhausted",
            params,
        )
        added = {metric: bool(exhausted) for metric, exhausted in cursor.fetchall()}
    if len(added) < len(metrics):
        raise ExactWayFirst()
    return {m: max(predicted.get(m, n), limits[m]) if added[m] else predicted.get(m, n) for m, n in metrics}


def _fold(item_id: int, still: dict[str, int], metrics: list[str], limits: dict[str, int]) -> dict[str, int]:
    """The exact way: lock the counter rows of ``metrics``, then all their shares in order (the
    transaction holds no share before: ``ExactWayFirst``), fold the shares into the counters
    with ``still`` (the report's amounts), grant new allotments; the exact totals."""
    counter, shard_table = _t(QuotaCounter), _t(QuotaShard)
    in_metrics = ", ".join(["%s"] * len(metrics))
    lock = for_update_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {counter} (item_id, metric, used) VALUES "
            + ", ".join(["(%s, %s, 0)"] * len(metrics))
            + " ON CONFLICT (item_id, metric) DO NOTHING",
            [v for m in metrics for v in (item_id, m)],
        )
        cursor.execute(
            f"SELECT metric, used FROM {counter} WHERE item_id = %s AND metric IN ({in_metrics}) ORDER BY metric{lock}",
            [item_id, *metrics],
        )
        exact = {metric: int(used) for metric, used in cursor.fetchall()}
        cursor.execute(
            f"SELECT metric, shard, used, allot, granted_limit, exhausted FROM {shard_table}"
            f" WHERE item_id = %s AND metric IN ({in_metrics}) ORDER BY metric, shard{lock}",
            [item_id, *metrics],
        )
        shares: dict[tuple[str, int], tuple[int, int, int, bool]] = {}
        for metric, k, used, allot, granted_limit, exhausted in cursor.fetchall():
            exact[metric] += int(used)
            shares[(metric, k)] = (int(used), int(allot), int(granted_limit), bool(exhausted))
        for metric, n in still.items():
            exact[metric] += n
        cursor.execute(
            f"UPDATE {counter} SET used = CASE metric "
            + " ".join("WHEN %s THEN %s" for _ in metrics)
            + f" END WHERE item_id = %s AND metric IN ({in_metrics})",
            [v for m in metrics for v in (m, exact[m])] + [item_id, *metrics],
        )
        rows = []
        for metric in metrics:
            headroom = limits[metric] - 1 - exact[metric]
            exhausted = exact[metric] >= limits[metric]
            allot = headroom // SHARDS if headroom >= SHARDS else 0
            # Only the shares that change (near the limit every report comes this way: most do not).
            rows += [
                (item_id, metric, k, 0, allot, limits[metric], exhausted)
                for k in range(SHARDS)
                if shares.get((metric, k)) != (0, allot, limits[metric], exhausted)
            ]
        if rows:
            cursor.execute(
                f"INSERT INTO {shard_table} (item_id, metric, shard, used, allot, granted_limit, exhausted) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
                + " ON CONFLICT (item_id, metric, shard) DO UPDATE SET used = 0, allot = excluded.allot,"
                " granted_limit = excluded.granted_limit, exhausted = excluded.exhausted",
                [v for row in rows for v in row],
            )
    return exact
