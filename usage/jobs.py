"""The scheduled jobs of SPEC section 8, one service per job name.

Each takes ``now`` (only entry points read the clock) and returns a JSON-able summary. They are
set-based: one ``UPDATE ... WHERE``, ``INSERT ... SELECT ... ON CONFLICT`` with the aggregation
in the database, or deletes in batches by primary key; no job walks a big table in Python.

Safety (a job may run twice, two copies may run at once, a worker may die half way):

- ``expire_idle_devices`` is one conditional UPDATE: a second copy finds nothing left to do.
- The rollups recompute whole slots/buckets (never add to them) in one transaction that also
  moves the job's watermark (``JobState``); the job's ``JobState`` row is locked first, so two
  copies run one after the other and the second recomputes the same values. A run killed half
  way rolls back and the next run redoes the same window.
- Late reports: a report names the slot its usage happened in, so a report received now for an
  old slot re-rolls that slot and its bucket. The window of reports a run looks at starts
  ``LATE_COMMIT_MARGIN`` before the previous watermark, because ``received_at`` is read when a
  request starts and its transaction may commit a little later.
- Alerts and reminders (``usage.notices``) are claimed with ``INSERT ... ON CONFLICT DO NOTHING
  RETURNING`` on their unique constraints, in the same transaction as the email: each threshold
  is sent once; a send that fails rolls its claim back and the next run retries it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min

from devices import tally
from devices.models import Decision, Device, ran_out_sql
from devices.seats import free_seats
from licenses import rules
from licenses.clock import rfc3339
from licenses.events import emit
from licenses.models import LicenseItem
from usage import partitions
from usage.anomalies import detect_anomalies
from usage.models import (
    ConcurrencyRollup,
    DeviceUsageTop,
    JobState,
    SightingMemory,
    SlotDevice,
    UsageCount,
    UsageReport,
    UsageRollup,
)
from usage.notices import recipients_of, send_renewal_reminders, send_usage_alerts
from usage.sql import execute as _execute
from usage.sql import fetchall as _fetchall
from usage.sql import floor_sql as _floor_sql
from usage.sql import table as _t
from usage.top_devices import refresh_top_devices, stale_projects

__all__ = [
    "JOBS",
    "expire_idle_devices",
    "purge_old_data",
    "recipients_of",
    "rollup_concurrency",
    "rollup_usage",
    "send_renewal_reminders",
    "send_usage_alerts",
]

SLOT_SECONDS = 180
BUCKET_SECONDS = 2 * 3600
DAY_SECONDS = 86400
# How long after its received_at a report's transaction may still commit; each run re-reads
# reports received this long before the previous watermark.
LATE_COMMIT_MARGIN = timedelta(minutes=5)
# A report's slot may start at most this far after it is received (SPEC section 6).
MAX_FUTURE_SLOT = timedelta(minutes=5)
PURGE_BATCH = 10_000
# Dedup memory matters only while a sighting could still arrive within the dedup interval of it;
# reports may carry usage up to 30 days old (SPEC section 6), so keep memory that long too.
DEDUP_MEMORY_MARGIN = timedelta(days=31)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _lock_job(name: str) -> JobState:
    """Lock the job's bookkeeping row for the current transaction: copies of a job run one at a
    time (on SQLite the IMMEDIATE transaction already serialises writers)."""
    JobState.objects.bulk_create([JobState(name=name)], ignore_conflicts=True)
    return JobState.objects.select_for_update().get(name=name)


def _window_start(state: JobState, now: datetime) -> datetime:
    """Reports received after this are (re)considered. A watermark in the future (a replay run
    with a later ``now``) must not hide reports received since."""
    if state.watermark is None:
        return EPOCH
    return min(state.watermark, now) - LATE_COMMIT_MARGIN


def _rebuild_all(state: JobState, now: datetime) -> bool:
    """Roll everything up again: on the first run, or on the first run after one as at a later
    time (a replay, SPEC 8): its watermark says nothing of the reports received since, whose
    ``received_at`` is earlier than it."""
    return state.watermark is None or state.watermark > now


def _chunks(rows: list, size: int = 250) -> list[list]:
    """At most 250 keys per statement (SQLite allows 500 terms in a compound SELECT)."""
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _key_list_sql(rows: list[tuple]) -> tuple[str, list]:
    """(item_id, range_start, range_end) rows as a literal derived table, both backends."""
    sql = " UNION ALL ".join(["SELECT %s AS item_id, %s AS range_start, %s AS range_end"] * len(rows))
    return sql, [value for row in rows for value in row]


def _iso(dt: datetime | None) -> str | None:
    return rfc3339(dt) if dt else None


# --- expire_idle_devices -----------------------------------------------------------------------


def expire_idle_devices(*, now: datetime) -> dict:
    """Active devices and servers whose ``active_until`` has come become expired; their seat is
    free. ``ended_at`` is the moment the seat ran out, so a late run records the same value.
    Then, in a transaction of its own, the device tally is folded (``devices.tally.compact``)."""
    devices = _t(Device)
    with transaction.atomic():  # the seat counters move with the devices (devices.seats)
        rows = _fetchall(
            f"""UPDATE {devices} SET state = %s, ended_at = active_until
            WHERE {ran_out_sql(devices)} RETURNING item_id""",
            [Device.EXPIRED, now],
        )
        freed = Counter(item_id for (item_id,) in rows if item_id is not None)
        free_seats(dict(freed))
        for item_id, count in sorted(freed.items()):  # SPEC 14: one event per item and run
            _emit_expired(item_id, count, now=now)
    # The tally rows the minute's device changes appended, folded (devices.tally: few to sum).
    return {"job": "expire_idle_devices", "expired": len(rows), "tally_rows_folded": tally.compact()}


def _emit_expired(item_id: int, count: int, *, now: datetime) -> None:
    item = LicenseItem.objects.select_related("project").get(pk=item_id)
    organization_id = item.project.organization_id
    data = {
        "organization": organization_id,
        "project": {"id": str(item.project_id), "name": item.project.name},
        "item": str(item_id),
        "count": count,
    }
    emit("devices.expired", data, organization=organization_id, now=now)


# --- rollup_concurrency ------------------------------------------------------------------------


def rollup_concurrency(*, now: datetime) -> dict:
    """Per concurrent item and closed slot: distinct active devices, the limit (quantity), and
    overuse devices, recomputed from ``SlotDevice`` for every slot a report arrived for since
    the last run. A slot still open (``slot_start + 180 s > now``) is left for a later run: the
    watermark stays at the first report of an open slot, so that run sees its reports again."""
    name = "rollup_concurrency"
    closed_before = now - timedelta(seconds=SLOT_SECONDS)  # slot_start <= this: closed
    with transaction.atomic():
        state = _lock_job(name)
        since = _window_start(state, now)
        item, report, slot_device, rollup = _t(LicenseItem), _t(UsageReport), _t(SlotDevice), _t(ConcurrencyRollup)
        if _rebuild_all(state, now):
            # First run (or after JobState was cleared, or a replay): every closed slot, one GROUP BY.
            source, params = f"{slot_device} sd", []
        else:
            source = f"""{slot_device} sd JOIN (
                SELECT DISTINCT r.item_id, r.slot_start
                FROM {report} r JOIN {item} ri ON ri.id = r.item_id
                WHERE ri.option = %s AND r.received_at > %s AND r.received_at <= %s
            ) a ON a.item_id = sd.item_id AND a.slot_start = sd.slot_start"""
            params = [rules.PER_CONCURRENT_DEVICE, since, now]
        rolled = _execute(
            f"""
            INSERT INTO {rollup} (item_id, slot_start, active_devices, "limit", overuse_devices)
            SELECT sd.item_id, sd.slot_start, COUNT(*), i.quantity,
                   SUM(CASE WHEN sd.overuse THEN 1 ELSE 0 END)
            FROM {source}
            JOIN {item} i ON i.id = sd.item_id
            WHERE sd.slot_start <= %s
            GROUP BY sd.item_id, sd.slot_start, i.quantity
            ON CONFLICT (item_id, slot_start) DO UPDATE SET
                active_devices = excluded.active_devices, "limit" = excluded."limit",
                overuse_devices = excluded.overuse_devices
            """,
            [*params, closed_before],
        )
        # The API refuses slots more than 5 minutes ahead, so a report of a still-open slot was
        # received after closed_before - 5 min: the received_at index bounds this to a few minutes.
        first_open = UsageReport.objects.filter(
            item__option=rules.PER_CONCURRENT_DEVICE,
            received_at__gt=max(since, closed_before - MAX_FUTURE_SLOT - LATE_COMMIT_MARGIN),
            received_at__lte=now,
            slot_start__gt=closed_before,
        ).aggregate(m=Min("received_at"))["m"]
        # Hold the watermark just before the first report of a still-open slot.
        watermark = min(now, first_open - timedelta(microseconds=1)) if first_open else now
        JobState.objects.filter(pk=state.pk).update(watermark=watermark, updated_at=now)
    return {"job": name, "slots_rolled": rolled, "since": _iso(since), "watermark": _iso(watermark)}


# --- rollup_usage ------------------------------------------------------------------------------


def rollup_usage(*, now: datetime) -> dict:
    """Usage per item and metric in 2-hour buckets and per UTC day. Every bucket a report
    arrived for since the last run is recomputed whole from ``UsageCount`` (the current bucket
    too, so charts show today); each day from its 2-hour buckets."""
    name = "rollup_usage"
    with transaction.atomic():
        state = _lock_job(name)
        since = _window_start(state, now)
        report, count, rollup = _t(UsageReport), _t(UsageCount), _t(UsageRollup)
        upsert = """
            ON CONFLICT (item_id, granularity, bucket_start, metric) DO UPDATE SET count = excluded.count
        """
        insert = f"INSERT INTO {rollup} (item_id, granularity, bucket_start, metric, count)"
        rebuild = _rebuild_all(state, now)
        if rebuild:
            # First run (or after JobState was cleared, or a replay): every bucket and day.
            bucket, day = _floor_sql("c.slot_start", BUCKET_SECONDS), _floor_sql("u.bucket_start", DAY_SECONDS)
            buckets = _execute(
                f"""{insert} SELECT c.item_id, %s, {bucket}, c.metric, SUM(c.count) FROM {count} c
                WHERE 1 = 1 GROUP BY c.item_id, {bucket}, c.metric {upsert}""",
                [UsageRollup.TWO_HOURS],
            )
            days = _execute(
                f"""{insert} SELECT u.item_id, %s, {day}, u.metric, SUM(u.count) FROM {rollup} u
                WHERE u.granularity = %s GROUP BY u.item_id, {day}, u.metric {upsert}""",
                [UsageRollup.DAY, UsageRollup.TWO_HOURS],
            )
        else:
            # The buckets and days of reports received in the window, each recomputed whole. The
            # (item, range) keys are read first and joined as a literal list: the planner then
            # knows how few they are and walks the (item, slot_start) index for each, where a
            # DISTINCT subquery (mis-estimated) made it merge-join the whole count table.
            def keys(seconds: int) -> list[tuple]:
                return _fetchall(
                    f"""SELECT DISTINCT r.item_id, {_floor_sql("r.slot_start", seconds)},
                        {_floor_sql("r.slot_start", seconds, seconds)}
                    FROM {report} r WHERE r.received_at > %s AND r.received_at <= %s""",
                    [since, now],
                )

            buckets = days = 0
            bucket_keys = keys(BUCKET_SECONDS)
            touched = {key[0] for key in bucket_keys}
            for chunk in _chunks(bucket_keys):
                affected, params = _key_list_sql(chunk)
                buckets += _execute(
                    f"""{insert} SELECT c.item_id, %s, a.range_start, c.metric, SUM(c.count)
                    FROM {count} c JOIN ({affected}) a
                        ON a.item_id = c.item_id AND c.slot_start >= a.range_start AND c.slot_start < a.range_end
                    WHERE 1 = 1 GROUP BY c.item_id, a.range_start, c.metric {upsert}""",
                    [UsageRollup.TWO_HOURS, *params],
                )
            for chunk in _chunks(keys(DAY_SECONDS)):
                affected, params = _key_list_sql(chunk)
                days += _execute(
                    f"""{insert} SELECT u.item_id, %s, a.range_start, u.metric, SUM(u.count)
                    FROM {rollup} u JOIN ({affected}) a
                        ON a.item_id = u.item_id AND u.bucket_start >= a.range_start AND u.bucket_start < a.range_end
                    WHERE u.granularity = %s GROUP BY u.item_id, a.range_start, u.metric {upsert}""",
                    [UsageRollup.DAY, *params, UsageRollup.TWO_HOURS],
                )
        # Devices by usage over the default period (usage.top_devices), as of this run: for the
        # projects whose reports arrived since the last run, or whose snapshot is of another day.
        if rebuild:
            projects = set(DeviceUsageTop.objects.values_list("project_id", flat=True))
        else:
            projects = {
                project_id
                for chunk in _chunks(sorted(touched))
                for project_id in LicenseItem.objects.filter(pk__in=chunk).values_list("project_id", flat=True)
            }
        top = refresh_top_devices(projects | stale_projects(now=now), now=now)
        JobState.objects.filter(pk=state.pk).update(watermark=now, updated_at=now)
    return {
        "job": name,
        "buckets_rolled": buckets,
        "days_rolled": days,
        "top_devices_projects": top,
        "since": _iso(since),
        "watermark": _iso(now),
    }


# --- purge_old_data ----------------------------------------------------------------------------


def _purge(
    model, where: str, params: Sequence, *, children: Sequence[tuple] = (), batch: int = PURGE_BATCH, table=None
) -> dict:
    """Delete ``model`` rows matching ``where`` (and their ``children`` rows first: (model, fk
    column)) in batches by primary key range, one transaction per batch: a killed run keeps
    what it finished and the next run continues. Each batch is a cheap primary-key range scan.
    ``table``: where the rows are (a partition of the model's table), the model's by default."""
    table = _t(model) if table is None else connection.ops.quote_name(table)
    deleted = {model._meta.model_name: 0, **{child._meta.model_name: 0 for child, _ in children}}
    low, high = _fetchall(f"SELECT MIN(id), MAX(id) FROM {table} WHERE {where}", params)[0]
    if low is None:
        return deleted
    for start in range(low, high + 1, batch):
        cond = f"id >= %s AND id < %s AND {where}"
        cond_params = [start, start + batch, *params]
        with transaction.atomic():
            for child, fk in children:
                deleted[child._meta.model_name] += _execute(
                    f"DELETE FROM {_t(child)} WHERE {fk} IN (SELECT id FROM {table} WHERE {cond})", cond_params
                )
            deleted[model._meta.model_name] += _execute(f"DELETE FROM {table} WHERE {cond}", cond_params)
    return deleted


def purge_old_data(*, now: datetime, batch: int = PURGE_BATCH) -> dict:
    """Raw usage reports (with their counts) and slot activity past ``REPORT_RETENTION_DAYS``;
    dedup memory idle longer than the longest dedup interval plus ``DEDUP_MEMORY_MARGIN``;
    decisions past ``DECISION_RETENTION_DAYS`` (default: the report retention). Rollups stay:
    they are the history.

    On PostgreSQL reports and counts are partitioned by month of slot (``usage.partitions``):
    the run first makes sure the months ahead exist, then drops each month whose every report
    is past retention (a catalog change), and deletes row by row only what the default
    partition holds past it. A month that still holds a report within retention is kept whole,
    so a report may outlive the retention by up to a month there (docs/operations.md)."""
    report_cutoff = now - timedelta(days=settings.REPORT_RETENTION_DAYS)
    decision_days = getattr(settings, "DECISION_RETENTION_DAYS", settings.REPORT_RETENTION_DAYS)
    decision_cutoff = now - timedelta(days=decision_days)
    longest_ms = LicenseItem.objects.aggregate(m=Max("dedup_interval_ms"))["m"] or 0
    sighting_cutoff = now - timedelta(milliseconds=longest_ms) - DEDUP_MEMORY_MARGIN
    summary: dict = {"job": "purge_old_data"}
    summary.update(partitions.ensure_partitions(now=now))
    summary.update(partitions.drop_partitions(cutoff=report_cutoff))
    summary.update(
        _purge(
            UsageReport,
            "received_at < %s",
            [report_cutoff],
            children=[(UsageCount, "report_id")],
            batch=batch,
            table=partitions.rows_purged_one_by_one(),
        )
    )
    summary.update(_purge(SlotDevice, "slot_start < %s", [report_cutoff], batch=batch))
    summary.update(_purge(SightingMemory, "updated_at < %s", [sighting_cutoff], batch=batch))
    summary.update(_purge(Decision, "created_at < %s", [decision_cutoff], batch=batch))
    return summary


JOBS: dict[str, Callable[..., dict]] = {
    "expire_idle_devices": expire_idle_devices,
    "rollup_concurrency": rollup_concurrency,
    "rollup_usage": rollup_usage,
    "send_usage_alerts": send_usage_alerts,
    "send_renewal_reminders": send_renewal_reminders,
    "purge_old_data": purge_old_data,
    "detect_anomalies": detect_anomalies,  # docs/insight.md, beyond SPEC section 8
}
