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
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery

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
    signature: dict[str, str]
    devices: list[Device] = field(default_factory=list)  # oldest first
    now: datetime | None = None

    @property
    def newest(self) -> Device:
        return self.devices[-1]

    @property
    def older(self) -> list[Device]:
        return self.devices[:-1]

    @property
    def burned(self) -> list[Device]:
        """The older devices still holding a seat."""
        assert self.now is not None
        return [d for d in self.older if d.holds_seat(self.now)]

    @property
    def seats_held(self) -> int:
        assert self.now is not None
        return sum(1 for d in self.devices if d.holds_seat(self.now))


def _family(address: str | None) -> str:
    if not address:
        return ""
    return "IPv6" if ":" in address else "IPv4"


def _same_client(older: Device, newer: Device) -> bool:
    if older.user_agent and newer.user_agent:
        return older.user_agent == newer.user_agent
    return older.device_name == newer.device_name


class _Tails:
    """Chains' newest devices by ``last_seen_at`` under one lookup key, so a device finds the
    chains it may extend (last seen within ``gap`` before it) without a pass over every chain."""

    def __init__(self) -> None:
        self.entries: list[tuple[datetime, int]] = []  # (tail's last_seen_at, chain number), sorted

    def add(self, seen: datetime, number: int) -> None:
        bisect.insort(self.entries, (seen, number))

    def remove(self, seen: datetime, number: int) -> None:
        i = bisect.bisect_left(self.entries, (seen, number))
        if i < len(self.entries) and self.entries[i] == (seen, number):
            del self.entries[i]

    def within(self, start: datetime, end: datetime) -> list[int]:
        # Tails last seen before ``start`` can extend no later device (devices come in order of
        # first authorization): dropped for good.
        lo = bisect.bisect_left(self.entries, (start, -1))
        del self.entries[:lo]
        hi = bisect.bisect_right(self.entries, (end, sys.maxsize))
        return [number for _, number in self.entries[:hi]]


def _lookups(device: Device, key: tuple) -> list[tuple]:
    """Where a chain ending in ``device`` is filed: by user agent, by name among tails without
    one, by name among all (``_same_client`` compares user agents when both have one)."""
    filed = [(key, "name", device.device_name)]
    if device.user_agent:
        filed.append((key, "agent", device.user_agent))
    else:
        filed.append((key, "name-no-agent", device.device_name))
    return filed


def _wanted(device: Device, key: tuple) -> list[tuple]:
    """Where the chains ``device`` may extend are filed."""
    if device.user_agent:
        return [(key, "agent", device.user_agent), (key, "name-no-agent", device.device_name)]
    return [(key, "name", device.device_name)]


def _chain(devices, gap: timedelta) -> dict[tuple, list[list[Device]]]:
    """Each device (in order of first authorization) extends the earliest-made chain of its key
    whose newest device is the same client and was last seen at most ``gap`` before it (and not
    after it), else starts a chain of its own."""
    chains: dict[tuple, list[list[Device]]] = {}
    made: list[list[Device]] = []
    tails: dict[tuple, _Tails] = {}
    for device in devices:
        key = tuple(getattr(device, f) for f in _KEY) + (_family(device.address),)
        first = device.first_authorized_at
        found = sorted(
            {n for where in _wanted(device, key) if where in tails for n in tails[where].within(first - gap, first)}
        )
        if found:
            number = found[0]
            chain = made[number]
            tail = chain[-1]
            for where in _lookups(tail, key):
                tails[where].remove(tail.last_seen_at, number)
            chain.append(device)
        else:
            number = len(made)
            chain = [device]
            made.append(chain)
            chains.setdefault(key, []).append(chain)
        for where in _lookups(device, key):
            tails.setdefault(where, _Tails()).add(device.last_seen_at, number)
    return chains


def burn_groups(project: Project, *, now: datetime, gap: timedelta | None = None) -> list[BurnGroup]:
    """The project's groups of re-registering devices, most burned seats first."""
    gap = gap if gap is not None else timedelta(hours=settings.SEAT_BURN_GAP_HOURS)
    latest_address = Decision.objects.filter(device=OuterRef("pk")).exclude(client_address=None).order_by("-created_at")
    devices = (
        Device.objects.filter(project=project, item__option__in=SEAT_OPTIONS)
        .exclude(origin="", device_name="", user_agent="")
        .annotate(address=Subquery(latest_address.values("client_address")[:1]))
        .only(*_KEY, "device_name", "user_agent", "device_uuid", "state", "active_until", *_TIMES)
        .order_by("first_authorized_at", "pk")
    )
    chains = _chain(devices.iterator(chunk_size=2000), gap)
    groups = []
    for key, found in chains.items():
        for chain in found:
            if len(chain) < 2:
                continue
            signature = {n: "" if v is None else str(v) for n, v in zip(_SIGNATURE, key, strict=True)}
            newest = chain[-1]
            signature.update(device_name=newest.device_name, user_agent=newest.user_agent)
            groups.append(BurnGroup(signature=signature, devices=chain, now=now))
    groups.sort(key=lambda g: (-len(g.burned), -len(g.devices), g.devices[0].first_authorized_at))
    return groups


def seats_burned(project: Project, *, now: datetime) -> int:
    """The project's "seats burned" figure: seats held by devices a newer UUID of the same client
    has replaced."""
    return sum(len(g.burned) for g in burn_groups(project, now=now))
