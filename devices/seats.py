"""Seats and servers counted in constant time (SPEC section 4, per_client_device and per_server).

``SeatCounter.active`` is the number of ``active`` devices of a seat item. Every change that
moves a device into or out of ``active`` on a seat item calls one of these functions in the same
transaction as the change:

- ``take_seat(item, device, ...)``: a device not holding a seat of ``item`` asks for one
  (authorize, offline registration, a release undone). One conditional ``UPDATE ... RETURNING``
  of the counter row when there is room; when the counter says the item is full, the slow path
  marks the item's run-out devices expired (what the expiry job would do), then decides exactly.
  The caller then writes the device (``state = active``, ``item``) in the same transaction.
- ``free_seat(item_id)``: an ``active`` device of the item becomes released or expired, or moves
  to another item (release, the expiry job, re-binding). A no-op for items without a counter.
- ``held_seats(item, now)``: the seats held now (counter minus run-out rows), one statement.
- ``recount(...)``: recompute counters from the devices (``manage.py repair_seat_counts``).

The counter counts ``active`` rows, never fewer than the seats held (``Device.holding_seat``),
so a check against it cannot overshoot the ceiling (``LicenseItem.seat_ceiling``); the row lock
of the conditional UPDATE serializes the allocations of one item from that statement to commit.
A counter row is created on first use from the live devices (items sold after the migration).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, F

from devices.models import Device, SeatCounter, ran_out_sql
from devices.prepared import hot_cursor
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


def take_seat(item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str = "") -> Take:
    """A seat (or a server) of ``item`` for a device not holding one; call it in the transaction
    that then writes the device as ``active`` on ``item`` (and ``free_seat`` for an item it
    leaves). Never more devices than ``item.seat_ceiling``: the counter row is locked from here
    to commit."""
    ceiling = item.seat_ceiling
    self_counted = _self_counted(item, device)
    delta = 1 - self_counted
    self_pk = device.pk if device is not None else 0
    counter, devices = _t(SeatCounter), _t(Device)
    row = _fetchone(
        f"""UPDATE {counter} SET active = active + %s WHERE item_id = %s AND active - %s < %s
        RETURNING active, (SELECT COUNT(*) FROM {devices} d WHERE d.item_id = %s AND {ran_out_sql("d")} AND d.id <> %s)""",
        [delta, item.pk, self_counted, ceiling, item.pk, now, self_pk],
    )
    if row is not None:
        active, ran_out = row
        return Take(True, active - delta - self_counted - ran_out)
    return _take_slow(item, device, now=now, device_uuid=device_uuid, self_counted=self_counted, delta=delta)


def _take_slow(
    item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str, self_counted: int, delta: int
) -> Take:
    """The counter says full (or has no row yet): lock it, expire the item's run-out devices (not
    waiting on rows another request holds), then decide on the exact count."""
    ensure_counter(item)
    SeatCounter.objects.select_for_update().filter(item_id=item.pk).values_list("active", flat=True).first()
    stale = list(
        Device.objects.filter(item_id=item.pk)
        .ran_out(now)
        .exclude(pk=device.pk if device is not None else None)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )
    if stale:
        Device.objects.filter(pk__in=stale).update(state=Device.EXPIRED, ended_at=F("active_until"))
        SeatCounter.objects.filter(item_id=item.pk).update(active=F("active") - len(stale))
    active = SeatCounter.objects.filter(item_id=item.pk).values_list("active", flat=True).get()
    others = active - self_counted
    if device is None and device_uuid:
        # The same new device authorizing twice at once: the other request's seat is its own
        # (this request's insert then conflicts and the authorization is retried).
        others -= Device.objects.filter(
            project_id=item.project_id, device_uuid=device_uuid, item_id=item.pk, state=Device.ACTIVE
        ).count()
    if seat_refused(item, others):
        return Take(False, others)
    if delta:
        SeatCounter.objects.filter(item_id=item.pk).update(active=F("active") + delta)
    return Take(True, others)


def seat_refused(item: LicenseItem, others: int) -> bool:
    """SPEC section 4: a new device is refused when the seats held by the others already number
    the ceiling (``LicenseItem.seat_ceiling``). The conditional UPDATE of ``take_seat`` is the
    same test in SQL; ``usage.replay`` takes seats in memory with this one."""
    return others >= item.seat_ceiling


def ensure_counter(item: LicenseItem) -> None:
    """Create the item's counter from its live devices if it has none (first use of an item)."""
    devices = _t(Device)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {_t(SeatCounter)} (item_id, active)
            SELECT %s, COUNT(*) FROM {devices} WHERE item_id = %s AND state = %s
            ON CONFLICT (item_id) DO NOTHING""",
            [item.pk, item.pk, Device.ACTIVE],
        )


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
    return f"""(SELECT c.active - (SELECT COUNT(*) FROM {_t(Device)} d WHERE d.item_id = c.item_id AND {ran_out_sql("d")})
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
                n = Device.objects.filter(item_id=item_id, state=Device.ACTIVE).count()
                SeatCounter.objects.filter(item_id=item_id).update(active=n)
    return wrong
