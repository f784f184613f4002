"""Seats and servers counted in constant time (SPEC section 4, per_client_device and per_server).

An item's active devices are ``SeatCounter.active`` plus its SHARDS shares' (``SeatShare``).
Every change that moves a device into or out of ``active`` on a seat item calls one of these
functions in the same transaction as the change:

- ``take_seat(item, device, ...)``: a device not holding a seat of ``item`` asks for one
  (authorize, offline registration, a release undone). In the authorization's first attempt
  (``fast_shares``), one conditional ``UPDATE ... RETURNING`` of the device's share while it
  has seats granted below the ceiling (``ExactWayFirst`` otherwise: the authorization runs again
  the exact way); the exact way locks the counter row and every share, folds the shares into
  the counter, marks the item's run-out devices expired (what the expiry job would do), decides
  on the exact count and grants the seats left to the shares. The caller then writes the
  device (``state = active``, ``item``) in the same transaction.
- ``free_seat(item_id)``: an ``active`` device of the item becomes released or expired, or moves
  to another item (release, the expiry job, re-binding): off the counter row (which alone may go
  below zero; the total cannot). A no-op for items without a counter.
- ``held_seats(item, now)``: the seats held now (counter and shares minus run-out rows), one statement.
- ``recount(...)``: recompute counters from the devices (``manage.py repair_seat_counts``).

The total counts ``active`` rows, never fewer than the seats held (``Device.holding_seat``), and
the counter plus the shares' grants never exceed the ceiling (``LicenseItem.seat_ceiling``), so
no order of simultaneous takes overshoots it; a new device far from the ceiling locks one of
SHARDS shares from its UPDATE to commit, not the item's one row. A counter row is created on
first use from the live devices (items sold after the migration).
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, F, Sum

from devices.models import Device, SeatCounter, SeatShare, ran_out_sql
from devices.prepared import for_update_sql, hot_cursor
from licenses import rules
from licenses.models import LicenseItem

SEAT_OPTIONS = (rules.PER_CLIENT_DEVICE, rules.PER_SERVER)


def counts_seats(item: LicenseItem) -> bool:
    return item.option in SEAT_OPTIONS


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _p(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _fetchone(sql: str, params: list) -> tuple | None:
    with hot_cursor() as cursor:
        cursor.execute(sql, [_p(v) for v in params])
        return cursor.fetchone()


@dataclass(frozen=True)
class Take:
    """The outcome of ``take_seat``: ``others`` are the seats held by other devices before this
    one took its own (the number a refusal quotes), ``taken`` whether it got one."""

    taken: bool
    others: int


def _self_counted(item: LicenseItem, device: Device | None) -> int:
    """1 when the device's row is already counted on this item (active, run out, re-authorizing)."""
    return int(device is not None and device.item_id == item.pk and device.state == Device.ACTIVE)


SHARDS = 16
# Whether take_seat may take its seat from a share (and raise ExactWayFirst when it cannot): the
# authorization's retry loop says so for its first attempt; every other caller goes the exact way.
_FAST: ContextVar[bool] = ContextVar("seats_fast", default=False)


def shard_of(device_uuid: str) -> int:
    """The share of an item's seat counter a device takes its seat from (by uuid: a new device
    has no id yet)."""
    return zlib.crc32(device_uuid.encode("utf-8", "surrogatepass")) % SHARDS


class ExactWayFirst(Exception):
    """The device's share had no seat left: the authorization rolls back and runs again with
    ``fast_shares(False)``. Not in the same transaction: the failed UPDATE may keep the share
    locked (PostgreSQL keeps the lock of a row it re-checked after waiting), and waiting for the
    counter row while holding a share would deadlock with a fold (counter, then every share)."""


@contextmanager
def fast_shares(on: bool):
    token = _FAST.set(on)
    try:
        yield
    finally:
        _FAST.reset(token)


def take_seat(item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str = "") -> Take:
    """A seat (or a server) of ``item`` for a device not holding one; call it in the transaction
    that then writes the device as ``active`` on ``item`` (and ``free_seat`` for an item it
    leaves). Never more devices than ``item.seat_ceiling``.

    The item's active devices are its counter row plus SHARDS shares (``SeatShare``). Far from
    the ceiling a device takes its seat from its share (``shard_of``) in one conditional UPDATE,
    while the share stays within seats granted below the ceiling: the counter and the grants
    never sum past it, so no order of concurrent takes overshoots. Otherwise (no seat left in
    the share, the ceiling changed, no shares yet, or not ``fast_shares``) the exact way: the
    counter row locked, every share folded into it, the decision on the exact count, new grants.
    ``others`` from a share is as of the statement (it quotes, it does not decide)."""
    ceiling = item.seat_ceiling
    self_counted = _self_counted(item, device)
    delta = 1 - self_counted
    uuid = device_uuid or (device.device_uuid if device is not None else "")
    room, granted = getattr(item, "_share_room", None), getattr(item, "_share_ceiling", None)
    read = hasattr(item, "_share_room")  # the authorization's read carries the device's share
    if _FAST.get() and (not read or (room is not None and room >= delta and granted == ceiling)):
        self_pk, shard = (device.pk if device is not None else 0), shard_of(uuid)
        counter, share, devices = _t(SeatCounter), _t(SeatShare), _t(Device)
        row = _fetchone(
            f"""UPDATE {share} SET active = active + %s
            WHERE item_id = %s AND shard = %s AND granted_ceiling = %s AND active + %s <= allot
            RETURNING active - %s + (SELECT c.active FROM {counter} c WHERE c.item_id = %s)
                + CAST(COALESCE((SELECT SUM(s.active) FROM {share} s WHERE s.item_id = %s AND s.shard <> %s), 0) AS BIGINT),
                (SELECT COUNT(*) FROM {devices} d WHERE d.item_id = %s AND {ran_out_sql("d")} AND d.id <> %s)""",
            [delta, item.pk, shard, ceiling, delta, delta, item.pk, item.pk, shard, item.pk, now, self_pk],
        )
        if row is None:
            raise ExactWayFirst()
        before, ran_out = row  # the item's active devices before this take (the others' shares as of now)
        return Take(True, max(0, int(before) - self_counted - int(ran_out)))
    return _take_slow(item, device, now=now, device_uuid=device_uuid, self_counted=self_counted, delta=delta)


def _take_slow(
    item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str, self_counted: int, delta: int
) -> Take:
    """The counter says full (or has no row yet): lock it, expire the item's run-out devices (not
    waiting on rows another request holds), then decide on the exact count.

    Every new device of a full item comes this way (each refusal), so its reads are prepared raw
    SQL (``hot_cursor``) rather than querysets built anew: a refusal at the ceiling was 9
    statements and twice a seat's web CPU; and nothing in it counts the item's devices."""
    ensure_counter(item)
    active = _fetchone(f"SELECT active FROM {_t(SeatCounter)} WHERE item_id = %s{for_update_sql()}", [item.pk])[0]  # type: ignore[index]
    active, grants = _fold(item.pk, active)
    devices = _t(Device)
    with hot_cursor() as cursor:
        cursor.execute(
            f"SELECT d.id FROM {devices} d WHERE d.item_id = %s AND {ran_out_sql('d')} AND d.id <> %s{for_update_sql(skip_locked=True)}",
            [item.pk, _p(now), device.pk if device is not None else 0],
        )
        stale = [pk for (pk,) in cursor.fetchall()]
    if stale:
        Device.objects.filter(pk__in=stale).update(state=Device.EXPIRED, ended_at=F("active_until"))
        SeatCounter.objects.filter(item_id=item.pk).update(active=F("active") - len(stale))
        active -= len(stale)  # the counter row is locked: this is its value now
    others = active - self_counted
    if device is None and device_uuid:
        # The same new device authorizing twice at once: the other request's seat is its own
        # (this request's insert then conflicts and the authorization is retried).
        others -= _fetchone(
            f"SELECT COUNT(*) FROM {devices} WHERE project_id = %s AND device_uuid = %s AND item_id = %s AND state = %s",
            [item.project_id, device_uuid, item.pk, Device.ACTIVE],
        )[0]  # type: ignore[index]
    if seat_refused(item, others):
        _grant(item, active, grants)
        return Take(False, others)
    if delta:
        SeatCounter.objects.filter(item_id=item.pk).update(active=F("active") + delta)
    _grant(item, active + delta, grants)
    return Take(True, others)


def _fold(item_id: int, active: int = 0) -> tuple[int, dict[int, tuple[int, int]]]:
    """Every share's active devices onto the counter row (locked by the caller, its ``active``
    as read there), the shares locked in order and emptied: the counter alone is the exact count
    until ``_grant``, which the caller runs before its commit. ``active`` plus what the fold
    moved onto the counter, and the shares' grants as they were: shard -> (allot, granted
    ceiling)."""
    with hot_cursor() as cursor:
        cursor.execute(
            f"SELECT shard, active, allot, granted_ceiling FROM {_t(SeatShare)} WHERE item_id = %s ORDER BY shard{for_update_sql()}",
            [item_id],
        )
        shares = cursor.fetchall()
    moved = sum(a for _, a, _, _ in shares)
    if any(a for _, a, _, _ in shares):
        SeatShare.objects.filter(item_id=item_id).exclude(active=0).update(active=0)
        if moved:
            SeatCounter.objects.filter(item_id=item_id).update(active=F("active") + moved)
    return active + moved, {k: (allot, granted) for k, _, allot, granted in shares}


def _grant(item: LicenseItem, active: int, grants: dict[int, tuple[int, int]]) -> None:
    """Seats below the ceiling for the shares, split evenly (none once fewer than SHARDS are
    left: then every new device goes the exact way, one at a time); only the shares whose grant
    changes are written (near the ceiling every new device comes this way)."""
    ceiling = item.seat_ceiling
    room = ceiling - active
    allot = room // SHARDS if room >= SHARDS else 0
    rows = [
        SeatShare(item_id=item.pk, shard=k, active=0, allot=allot, granted_ceiling=ceiling)
        for k in range(SHARDS)
        if grants.get(k) != (allot, ceiling)
    ]
    if rows:
        SeatShare.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["item", "shard"], update_fields=["allot", "granted_ceiling"]
        )


def seat_refused(item: LicenseItem, others: int) -> bool:
    """SPEC section 4: a new device is refused when the seats held by the others already number
    the ceiling (``LicenseItem.seat_ceiling``). The conditional UPDATE of ``take_seat`` is the
    same test in SQL; ``usage.replay`` takes seats in memory with this one."""
    return others >= item.seat_ceiling


def ensure_counter(item: LicenseItem) -> None:
    """Create the item's counter from its live devices if it has none (first use of an item)."""
    with hot_cursor() as cursor:
        cursor.execute(*_ensure_counter_sql(item.pk))


def _ensure_counter_sql(item_id: int) -> tuple[str, list]:
    """Counts nothing when the item has a counter: the count is in a subquery of a row that
    exists only when it has none (every refusal at the ceiling runs this)."""
    devices, counter = _t(Device), _t(SeatCounter)
    sql = f"""INSERT INTO {counter} (item_id, active)
        SELECT CAST(%s AS BIGINT), (SELECT COUNT(*) FROM {devices} WHERE item_id = %s AND state = %s)
        WHERE NOT EXISTS (SELECT 1 FROM {counter} WHERE item_id = %s)
        ON CONFLICT (item_id) DO NOTHING"""
    return sql, [item_id, item_id, Device.ACTIVE, item_id]


def free_seat(item_id: int | None, n: int = 1) -> None:
    """``n`` active devices of the item stopped being active there (released, expired, moved)."""
    if item_id is not None and n:
        SeatCounter.objects.filter(item_id=item_id).update(active=F("active") - n)


def free_seats(by_item: dict[int, int]) -> None:
    """``free_seat`` for many items (the expiry job), in item order so that two copies lock the
    counter rows in the same order."""
    for item_id in sorted(by_item):
        free_seat(item_id, by_item[item_id])


def held_seats_sql(item_id_sql: str) -> str:
    """``held_seats`` as a scalar subquery for the item whose id is the SQL ``item_id_sql`` (NULL
    when the item has no counter row yet): one ``%s`` parameter, ``now``."""
    return f"""(SELECT c.active + CAST(COALESCE((SELECT SUM(s.active) FROM {_t(SeatShare)} s WHERE s.item_id = c.item_id), 0) AS BIGINT)
        - (SELECT COUNT(*) FROM {_t(Device)} d WHERE d.item_id = c.item_id AND {ran_out_sql("d")})
        FROM {_t(SeatCounter)} c WHERE c.item_id = {item_id_sql})"""


def held_seats(item: LicenseItem, *, now: datetime) -> int:
    """Seats held now: the counter minus the run-out rows it still counts. One statement."""
    row = _fetchone(f"SELECT {held_seats_sql('%s')}", [now, item.pk])
    if row is None or row[0] is None:
        return Device.objects.filter(item_id=item.pk).holding_seat(now).count()
    return max(0, row[0])


def recount(*, fix: bool = True) -> list[tuple[int, int, int]]:
    """(item id, counter, active devices) for every seat item whose counter is wrong; with
    ``fix``, each is set to the live count (locking its row while it recounts). An item without
    a counter row yet is right by definition: its first seat creates it from the live devices."""
    wrong = []
    live = dict(
        Device.objects.filter(state=Device.ACTIVE, item__option__in=SEAT_OPTIONS)
        .values_list("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    stored = dict(SeatCounter.objects.values_list("item_id", "active"))
    for item_id, n in SeatShare.objects.values_list("item_id").annotate(n=Sum("active")).values_list("item_id", "n"):
        if item_id in stored:
            stored[item_id] += int(n)
    for item_id in sorted(
        LicenseItem.objects.filter(option__in=SEAT_OPTIONS, pk__in=stored).values_list("pk", flat=True)
    ):
        if stored[item_id] != live.get(item_id, 0):
            wrong.append((item_id, stored[item_id], live.get(item_id, 0)))
    if fix:
        from django.db import transaction

        for item_id, _, _ in wrong:
            with transaction.atomic():
                SeatCounter.objects.select_for_update().filter(item_id=item_id).first()
                _fold(item_id)  # the shares emptied and, below, none granted: the next seat is taken exactly
                SeatShare.objects.filter(item_id=item_id).exclude(allot=0).update(allot=0)
                n = Device.objects.filter(item_id=item_id, state=Device.ACTIVE).count()
                SeatCounter.objects.filter(item_id=item_id).update(active=n)
    return wrong
