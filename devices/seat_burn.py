"""Seat burn (docs/insight.md): devices that are probably one client registering again under a
new UUID (a web SDK keeps its UUID in browser storage: a cleared cache or a private window takes a
new seat), grouped, with the seats the older ones still hold.

Two devices of a project are one client re-registering when they share the item, client type,
origin, platform, SDK version and client address family (IPv4 or IPv6, of their latest recorded
request), the same user agent (the HTTP User-Agent of their latest authorization) when both have
one, else the same device name, at least the origin, device name or user agent is known, and the
newer was first authorized after the older was last seen and within ``SEAT_BURN_GAP_HOURS`` of it
(the old one had gone idle). A web SDK may name each installation anew, so a user agent that
matches groups devices whose names differ. Chains of such devices form a group; the seats held by
all but its newest device are burned (``Device.holds_seat``): the portal offers releasing them in
bulk.
"""

from __future__ import annotations

import bisect
import gc
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, Func, OuterRef, Subquery

from devices.models import Decision, Device
from devices.seats import SEAT_OPTIONS
from licenses.models import Project

# Shared by every device of a group; the client's identity (user agent, else device name) is
# compared device to device (``_same_client``).
_KEY = ("item_id", "client_type", "origin", "platform", "sdk_version")
_TIMES = ("first_authorized_at", "last_seen_at")
_SIGNATURE = ("item", "client_type", "origin", "platform", "sdk_version", "address_family")


@dataclass
class BurnGroup:
    """One client's UUIDs, oldest first: ``rows`` as read, ``devices`` their model instances,
    made when first asked for (a page shows some groups; every group is counted from its rows)."""

    signature: dict[str, str]
    rows: list[_Row]
    now: datetime

    @cached_property
    def devices(self) -> list[Device]:
        db = Device.objects.db
        return [row.device(db) for row in self.rows]

    @property
    def newest(self) -> Device:
        return self.devices[-1]

    @property
    def older(self) -> list[Device]:
        return self.devices[:-1]

    @cached_property
    def burned(self) -> list[Device]:
        """The older devices still holding a seat (worked out once: a page reads it per row)."""
        return [d for d in self.older if d.holds_seat(self.now)]

    @cached_property
    def burned_count(self) -> int:
        """``len(burned)``, from the rows."""
        now = (self.now - _EPOCH) // _MICRO
        return sum(1 for row in self.rows[:-1] if row.holds_seat(now))

    @cached_property
    def seats_held(self) -> int:
        now = (self.now - _EPOCH) // _MICRO
        return sum(1 for row in self.rows if row.holds_seat(now))

    def seats(self) -> list[tuple[Device, str]]:
        """Each device, oldest first, with what its seat is: ``burned``, ``held`` (the newest,
        holding its own) or its state."""
        burned = {d.pk for d in self.burned}
        return [
            (d, "burned" if d.pk in burned else "held" if d.holds_seat(self.now) else d.state) for d in self.devices
        ]


def _family(address: str | None) -> str:
    if not address:
        return ""
    return "IPv6" if ":" in address else "IPv4"


def _same_client(older: Device, newer: Device) -> bool:
    if older.user_agent and newer.user_agent:
        return older.user_agent == newer.user_agent
    return older.device_name == newer.device_name


# Where chains are filed, by their newest device (its tail): under (key number, kind, text), the
# tails' (last_seen_at, chain number) sorted, so a device finds the chains it may extend (last
# seen within the gap before it) by bisection instead of a pass over every chain of its key.
_NAME, _AGENT, _NAME_NO_AGENT = 0, 1, 2


def _lookups(device, key: int) -> tuple[tuple, ...]:
    """Where a chain ending in ``device`` is filed: by name among all, and by user agent or by
    name among tails without one (``_same_client`` compares user agents when both have one)."""
    if device.user_agent:
        return (key, _NAME, device.device_name), (key, _AGENT, device.user_agent)
    return (key, _NAME, device.device_name), (key, _NAME_NO_AGENT, device.device_name)


def _wanted(device, key: int) -> tuple[tuple, ...]:
    """Where the chains ``device`` may extend are filed."""
    if device.user_agent:
        return (key, _AGENT, device.user_agent), (key, _NAME_NO_AGENT, device.device_name)
    return ((key, _NAME, device.device_name),)


def _earliest(tails: list[tuple[Any, int]], start, end) -> int | None:
    """The earliest-made chain among ``tails`` last seen in [start, end], or None. Tails last
    seen before ``start`` can extend no later device (devices come in order of first
    authorization): dropped for good."""
    if tails[0][0] < start:
        del tails[: bisect.bisect_left(tails, (start, -1))]
    hi = bisect.bisect_right(tails, (end, sys.maxsize))
    if not hi:
        return None
    return tails[0][1] if hi == 1 else min(number for _, number in tails[:hi])


def _chain(devices: Iterable, gap) -> dict[tuple, list[list]]:
    """Each device (in order of first authorization) extends the earliest-made chain of its key
    whose newest device is the same client and was last seen at most ``gap`` before it (and not
    after it), else starts a chain of its own. Times and ``gap`` are datetimes and a timedelta,
    or microseconds (``_Row``)."""
    chains: dict[tuple, list[list]] = {}
    made: list[list] = []
    filed: dict[tuple, list[tuple[Any, int]]] = {}
    numbers: dict[tuple, int] = {}  # each key's number, for short lookup keys
    key_of = attrgetter(*_KEY)
    for device in devices:
        key = (*key_of(device), _family(device.address))
        k = numbers.setdefault(key, len(numbers))
        first = device.first_authorized_at
        start = first - gap
        number = None
        for where in _wanted(device, k):
            tails = filed.get(where)
            if tails:
                hit = _earliest(tails, start, first)
                if hit is not None and (number is None or hit < number):
                    number = hit
        if number is not None:
            chain = made[number]
            tail = chain[-1]
            entry = (tail.last_seen_at, number)
            for where in _lookups(tail, k):
                tails = filed[where]
                i = bisect.bisect_left(tails, entry)
                if i < len(tails) and tails[i] == entry:
                    del tails[i]
            chain.append(device)
        else:
            number = len(made)
            chain = [device]
            made.append(chain)
            chains.setdefault(key, []).append(chain)
        entry = (device.last_seen_at, number)
        for where in _lookups(device, k):
            tails = filed.get(where)
            if tails is None:
                filed[where] = [entry]
            else:
                bisect.insort(tails, entry)
    return chains


class _Micros(Func):
    """A time as microseconds since the epoch, on PostgreSQL: an integer loads in a fraction of
    the time of a ``timestamptz`` (Django's time zone loader runs in Python for every value)."""

    template = "(extract(epoch FROM %(expressions)s) * 1000000)::bigint"
    output_field = BigIntegerField()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_ROW = ("pk", *_KEY, "device_name", "user_agent", "device_uuid", "state")  # texts and ids, as loaded
_ROW_TIMES = (*_TIMES, "active_until")
# A grouped device is made from its row (Device.from_db): these columns, in the model's order.
_LOADED = [f.attname for f in Device._meta.concrete_fields if f.attname in {"id", *_ROW[1:], *_ROW_TIMES}]


class _Row(NamedTuple):
    """One device as the chaining reads it: its columns, the times in microseconds since the
    epoch (compared with a gap in microseconds), its latest client address."""

    id: int
    item_id: int
    client_type: str
    origin: str
    platform: str
    sdk_version: str
    device_name: str
    user_agent: str
    device_uuid: str
    state: str
    first_authorized_at: int
    last_seen_at: int
    active_until: int
    address: str | None

    def holds_seat(self, now: int) -> bool:
        """``Device.holds_seat`` on the row's columns (``now`` in microseconds, as its times)."""
        return Device.holds_seat(self, now)  # type: ignore[arg-type]  # reads state and active_until only

    def device(self, db: str) -> Device:
        """The model instance (the other columns deferred, as ``.only()`` leaves them)."""
        values = [_EPOCH + getattr(self, n) * _MICRO if n in _ROW_TIMES else getattr(self, n) for n in _LOADED]
        device = Device.from_db(db, _LOADED, values)
        device.address = self.address  # type: ignore[attr-defined]  # as the annotation did
        return device


def _rows(project: Project) -> Iterator[_Row]:
    """The project's seat devices that name their client somehow, in order of first
    authorization, with the address of their latest decision that recorded one."""
    latest_address = Decision.objects.filter(device=OuterRef("pk")).exclude(client_address=None).order_by("-created_at")
    address = Subquery(latest_address.values("client_address")[:1])
    devices = (
        Device.objects.filter(project=project, item__option__in=SEAT_OPTIONS)
        .exclude(origin="", device_name="", user_agent="")
        .order_by("first_authorized_at", "pk")
    )
    if connection.vendor == "postgresql":
        # The queryset's own SQL, its rows read as they come (no converter applies to these
        # columns): times as integers (``_Micros``), the address last.
        micros = {f"{name}_us": _Micros(name) for name in _ROW_TIMES}
        query = devices.annotate(**micros).annotate(address=address).values_list(*_ROW, *micros, "address").query
        sql, params = query.sql_with_params()
        with connection.cursor() as cursor:  # every row is kept (by its chain): no server-side cursor
            cursor.execute(sql, params)
            yield from map(_Row._make, cursor.fetchall())
        return
    for values in devices.annotate(address=address).values_list(*_ROW, *_ROW_TIMES, "address"):
        *head, first, last, until, last_address = values
        yield _Row._make((*head, *((t - _EPOCH) // _MICRO for t in (first, last, until)), last_address))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The chaining makes a few objects per device and keeps them all until it returns, so the
    cyclic garbage collector's passes over them free nothing; at 50,000 devices they were half
    its CPU. Paused meanwhile (reference counting still frees as usual), restored after; the
    switch is the process's, so another thread's collections wait too, and whichever of two
    overlapping calls found it on turns it back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def burn_groups(project: Project, *, now: datetime, gap: timedelta | None = None) -> list[BurnGroup]:
    """The project's groups of re-registering devices, most burned seats first. Devices are read
    as plain rows and chained; a group's become model instances when it is shown or released."""
    gap = gap if gap is not None else timedelta(hours=settings.SEAT_BURN_GAP_HOURS)
    with _collector_paused():
        chains = _chain(_rows(project), gap // _MICRO)
    groups = []
    for key, found in chains.items():
        for chain in found:
            if len(chain) < 2:
                continue
            signature = {n: "" if v is None else str(v) for n, v in zip(_SIGNATURE, key, strict=True)}
            newest = chain[-1]
            signature.update(device_name=newest.device_name, user_agent=newest.user_agent)
            groups.append(BurnGroup(signature=signature, rows=chain, now=now))
    groups.sort(key=lambda g: (-g.burned_count, -len(g.rows), g.rows[0].first_authorized_at))
    return groups


def seats_burned(project: Project, *, now: datetime) -> int:
    """The project's "seats burned" figure: seats held by devices a newer UUID of the same client
    has replaced."""
    return sum(g.burned_count for g in burn_groups(project, now=now))
