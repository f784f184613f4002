"""The statements of the usage hot path (SPEC section 6, ``POST /api/v1/usage``), in raw SQL
where it saves statements or Python time over the ORM; the rules stay in their homes
(``devices.models`` holds-a-seat, ``devices.seats`` seats held, ``LicenseItem`` limits).

- ``read_request``: the device, its project, item and license, the item's counters, the seats
  it holds and an earlier report with the same ``report_id``: one statement, no lock.
- ``insert_report``: the report with its answer, its per-metric counts and the device's day
  (``DeviceUsageDay``): one statement on PostgreSQL (data-modifying CTEs), three on SQLite. A second report with the same
  ``(device, report_id)``, in any slot, inserts nothing and raises ``ReportIdTaken`` (the
  caller's transaction rolls back).
- ``remember_sightings``: the device's dedup memory of the keys a report saw, read and merged
  with what it saw (``usage.dedup``): one statement on PostgreSQL (a data-modifying CTE), two on
  SQLite.
- ``add_to_counters``: ``used += n`` for every metric of the report in one conditional UPDATE of
  the device's share of the item's counters (``devices.quota``): the last statement before
  commit, so a share of the counter is held from there to the commit only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection
from django.db.models import BigIntegerField, DateTimeField, F, OuterRef, Q, Subquery, TextField, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from devices import quota
from devices.context import client_address
from devices.models import Device, QuotaCounter
from devices.prepared import Prepared, PreparedUpdate, hot_cursor, sentinel_datetime
from devices.seats import held_seats_sql
from usage.models import DeviceUsageDay, SightingMemory, UsageCount, UsageReport
from usage.sql import param, table


def _counters_json_sql() -> str:
    counter = table(QuotaCounter)
    outer = f"{table(Device)}.item_id"
    total = quota.totals_sql("qc")  # the counter and its shares (devices.quota)
    if connection.vendor == "postgresql":
        return f"(SELECT json_object_agg(qc.metric, {total})::text FROM {counter} qc WHERE qc.item_id = {outer})"
    return f"(SELECT json_group_object(qc.metric, {total}) FROM {counter} qc WHERE qc.item_id = {outer})"


def _request_queryset(
    *, license_key: str, device_uuid: str, report_id: str, now: datetime, slot_from: datetime, slot_to: datetime
):
    earlier = UsageReport.objects.filter(
        device=OuterRef("pk"), report_id=report_id, slot_start__gte=slot_from, slot_start__lte=slot_to
    ).values("pk")[:1]
    return (
        Device.objects.filter(Q(project__license_key=license_key) | Q(project__previous_license_key=license_key))
        .filter(device_uuid=device_uuid)
        .select_related("project", "item__license")
        .annotate(
            _counters=RawSQL(_counters_json_sql(), [], output_field=TextField()),
            _share=RawSQL(
                quota.share_json_sql(f"{table(Device)}.item_id", f"{table(Device)}.id"), [], output_field=TextField()
            ),
            _seats_held=RawSQL(
                held_seats_sql(f"{table(Device)}.item_id"), [param(now)], output_field=BigIntegerField()
            ),
            _earlier_report=Subquery(earlier),
        )
        .order_by()[:2]
    )


# Compiled once per connection (devices.prepared): the ORM built this read anew for every report.
_REQUEST = Prepared(
    "usage.read_request",
    _request_queryset,
    license_key="\x00key",
    device_uuid="\x00device",
    report_id="\x00report",
    now=sentinel_datetime(1),
    slot_from=sentinel_datetime(2),
    slot_to=sentinel_datetime(3),
)
# Any slot: the bounds of an unpinned look-up of an earlier report (read_request).
_FIRST_SLOT, _LAST_SLOT = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def read_request(
    *, license_key: str, device_uuid: str, report_id: str, now: datetime, slot_start: datetime | None = None
) -> Device | None:
    """The device of ``device_uuid`` in the project whose current or previous key is
    ``license_key`` (the caller checks which), with ``project``, ``item`` and ``item.license``
    loaded and annotated: ``_counters`` (metric -> used of its item), ``_share`` (the device's
    share of each counter, ``devices.quota.read_share``), ``_seats_held`` (None for items
    without a seat counter) and ``_earlier_report`` (the pk of a report with this id).

    With ``slot_start`` the earlier report is looked for in that slot only: one partition on
    PostgreSQL (usage.partitions), where a retry with the same body is, since its body holds the
    slot. A report with this id in another slot is found by ``insert_report``'s check instead,
    and the read is then done again without it."""
    slot_from, slot_to = (slot_start, slot_start) if slot_start is not None else (_FIRST_SLOT, _LAST_SLOT)
    rows = _REQUEST.rows(
        license_key=license_key,
        device_uuid=device_uuid,
        report_id=report_id,
        now=now,
        slot_from=slot_from,
        slot_to=slot_to,
    )
    if not rows:
        return None
    device = next((d for d in rows if d.project.license_key == license_key), rows[0])
    raw = device._counters
    device._counters = {k: int(v) for k, v in json.loads(raw).items()} if raw else {}
    device._share = quota.read_share(device._share)
    return device


def _refresh_update(*, pk: int, now: datetime, active_until: datetime):
    changes = {
        "last_seen_at": now,
        "active_until": active_until,
        "first_used_at": Coalesce(F("first_used_at"), Value(now, output_field=DateTimeField())),
    }
    return Device.objects.holding_seat(now).filter(pk=pk), changes


_REFRESH = PreparedUpdate(
    "usage.refresh_device", _refresh_update, pk=-(2**62), now=sentinel_datetime(1), active_until=sentinel_datetime(2)
)


def refresh_device(pk: int, *, now: datetime, active_until: datetime) -> bool:
    """A contact refreshes the device while it holds its seat (``Device.objects.holding_seat``):
    ``last_seen_at``, ``active_until``, ``first_used_at`` if unset. False when it no longer holds
    one (released or expired since the read). The row stays locked to the commit, which
    serializes the reports of one device."""
    return _REFRESH.run(pk=pk, now=now, active_until=active_until) == 1


def insert_report(
    *,
    device_id: int,
    report_id: str,
    item_id: int,
    slot_start: datetime,
    body_hash: str,
    counted: dict[str, int],
    allowed: bool,
    response: dict[str, Any],
    received_at: datetime,
    raw_sightings: bytes | None = None,
) -> int:
    """Insert the report (with its packed sightings, ``usage.sightings_store``, if it had any),
    one count row per metric of ``counted`` and its share of the device's day
    (``DeviceUsageDay``, the UTC day of its slot); the report's id."""
    report, count, day = table(UsageReport), table(UsageCount), table(DeviceUsageDay)
    utc_day = slot_start.astimezone(UTC).date()
    values = [device_id, report_id, item_id, slot_start, body_hash, json.dumps(counted), allowed]
    values += [json.dumps(response, ensure_ascii=False), received_at, client_address(), raw_sightings]
    columns = "device_id, report_id, item_id, slot_start, body_hash, counted, allowed, response, received_at"
    columns += ", client_address, raw_sightings"
    metrics = list(counted.items())
    # Not when this device already has a report with this id, in any slot: on PostgreSQL the
    # unique index includes the slot (the partition key, usage.partitions), so this is what keeps
    # (device, report_id) unique. Run after the device row is locked (usage.services), its
    # snapshot sees a twin committed meanwhile. SQLite's unique constraint is the belt there.
    fresh = f"WHERE NOT EXISTS (SELECT 1 FROM {report} e WHERE e.device_id = %s AND e.report_id = %s)"
    values += [device_id, report_id]
    with hot_cursor() as cursor:
        if connection.vendor == "postgresql":
            rows = " UNION ALL ".join(["SELECT %s::varchar, %s::integer"] * len(metrics))
            sql = f"""INSERT INTO {report} ({columns})
                SELECT %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s::inet, %s::bytea {fresh} RETURNING id"""
            if metrics:
                sql = f"""WITH r AS ({sql}), m (metric, n) AS ({rows}), c AS (
                    INSERT INTO {count} (report_id, item_id, slot_start, metric, count)
                    SELECT r.id, %s, %s, m.metric, m.n FROM r, m
                ), d AS (
                    INSERT INTO {day} (device_id, item_id, day, metric, count)
                    SELECT %s, %s, %s, m.metric, m.n FROM r, m
                    ON CONFLICT (device_id, item_id, day, metric) DO UPDATE SET count = {day}.count + excluded.count
                ) SELECT id FROM r"""
                values += [v for pair in metrics for v in pair] + [item_id, slot_start, device_id, item_id, utc_day]
            cursor.execute(sql, [param(v) for v in values])
            return _inserted(cursor.fetchone())
        cursor.execute(
            f"INSERT INTO {report} ({columns}) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s {fresh} RETURNING id",
            [param(v) for v in values],
        )
        pk = _inserted(cursor.fetchone())
        if metrics:
            cursor.execute(
                f"INSERT INTO {count} (report_id, item_id, slot_start, metric, count) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s)"] * len(metrics)),
                [param(v) for m, n in metrics for v in (pk, item_id, slot_start, m, n)],
            )
            cursor.execute(
                f"INSERT INTO {day} (device_id, item_id, day, metric, count) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s)"] * len(metrics))
                + f" ON CONFLICT (device_id, item_id, day, metric) DO UPDATE SET count = {day}.count + excluded.count",
                [v for m, n in metrics for v in (device_id, item_id, utc_day.isoformat(), m, n)],
            )
        return pk


_SQLITE_BATCH = 240  # memory rows per statement on SQLite: 4 parameters each, under its limit of 999


def remember_sightings(device_id: int, seen: dict[str, int], *, now: datetime) -> dict[str, int]:
    """The device's dedup memory of the keys in ``seen`` as it was (key -> latest ``ts_ms``), and
    ``seen`` (key -> the latest ``ts_ms`` this report saw it) merged into it: each key keeps the
    later of the two times, ``updated_at`` = ``now`` (its retention, ``usage.jobs``). The caller
    holds the device's row lock, so no other report of the device writes these rows meanwhile.

    PostgreSQL: one prepared statement, whatever the number of keys; the read and the upsert
    share its snapshot, so the read is the memory before the merge."""
    memory = table(SightingMemory)
    keys = sorted(seen)
    times = [seen[k] for k in keys]
    stamp = param(now)
    with hot_cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""WITH old AS (
                    SELECT key, last_ts_ms FROM {memory} WHERE device_id = %s AND key = ANY(%s::varchar[])
                ), merged AS (
                    INSERT INTO {memory} (device_id, key, last_ts_ms, updated_at)
                    SELECT %s, s.key, s.ts, %s FROM unnest(%s::varchar[], %s::bigint[]) AS s (key, ts)
                    ON CONFLICT (device_id, key) DO UPDATE
                    SET last_ts_ms = GREATEST({memory}.last_ts_ms, excluded.last_ts_ms), updated_at = excluded.updated_at
                ) SELECT key, last_ts_ms FROM old""",
                [device_id, keys, device_id, stamp, keys, times],
            )
            return dict(cursor.fetchall())
        before: dict[str, int] = {}
        for i in range(0, len(keys), _SQLITE_BATCH):
            batch = keys[i : i + _SQLITE_BATCH]
            cursor.execute(
                f"SELECT key, last_ts_ms FROM {memory} WHERE device_id = %s AND key IN ({', '.join(['%s'] * len(batch))})",
                [device_id, *batch],
            )
            before.update(cursor.fetchall())
        for i in range(0, len(keys), _SQLITE_BATCH):
            batch = keys[i : i + _SQLITE_BATCH]
            cursor.execute(
                f"INSERT INTO {memory} (device_id, key, last_ts_ms, updated_at) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(batch))
                + " ON CONFLICT (device_id, key) DO UPDATE"
                " SET last_ts_ms = max(last_ts_ms, excluded.last_ts_ms), updated_at = excluded.updated_at",
                [v for k in batch for v in (device_id, k, seen[k], stamp)],
            )
        return before


class ReportIdTaken(IntegrityError):
    """The device has a report with this ``report_id`` already (committed since the read): the
    caller's transaction rolls back and the report is read again, to replay it or answer 409."""


def _inserted(row) -> int:
    if row is None:
        raise ReportIdTaken()
    return row[0]


def update_answer(report_pk: int, *, slot_start: datetime, allowed: bool, response: dict[str, Any]) -> None:
    """A report's answer decided again after its counter moved under it (``usage.services``);
    ``slot_start`` names its partition (usage.partitions)."""
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with hot_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table(UsageReport)} SET allowed = %s, response = %s{cast} WHERE id = %s AND slot_start = %s",
            [allowed, json.dumps(response, ensure_ascii=False), report_pk, param(slot_start)],
        )


def add_to_counters(
    item_id: int,
    amounts: dict[str, int],
    *,
    shard: int,
    limits: dict[str, int],
    predicted: dict[str, int],
    share: dict | None = None,
    exact: bool = False,
) -> dict[str, int]:
    """The report's amounts added to the item's counters (``devices.quota.add``: its device's
    share in one conditional UPDATE, the last statement before the commit; the exact way when
    the share's headroom is spent): metric -> the total to decide the report on."""
    return quota.add(item_id, amounts, shard=shard, limits=limits, predicted=predicted, share=share, exact=exact)
