"""Seat burn (docs/insight.md): devices that are probably one client registering again under a
new UUID (a web SDK keeps its UUID in browser storage: a cleared cache or a private window takes a
new seat), grouped, with the seats the older ones still hold.

Two devices of a project are one client re-registering when they share the item, client type,
origin, platform, device name, SDK version and client address family (IPv4 or IPv6, of their
latest recorded request), at least the origin or the device name is known, and the newer was first
authorized after the older was last seen and within ``SEAT_BURN_GAP_HOURS`` of it (the old one
had gone idle). Chains of such devices form a group; the seats held by all but its newest device
are burned (``Device.holds_seat``): the portal offers releasing them in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery

from devices.models import Decision, Device
from devices.seats import SEAT_OPTIONS
from licenses.models import Project

_FIELDS = ("pk", "item_id", "client_type", "origin", "platform", "device_name", "sdk_version")


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


def burn_groups(project: Project, *, now: datetime, gap: timedelta | None = None) -> list[BurnGroup]:
    """The project's groups of re-registering devices, most burned seats first."""
    gap = gap if gap is not None else timedelta(hours=settings.SEAT_BURN_GAP_HOURS)
    latest_address = Decision.objects.filter(device=OuterRef("pk")).exclude(client_address=None).order_by("-created_at")
    devices = (
        Device.objects.filter(project=project, item__option__in=SEAT_OPTIONS)
        .exclude(origin="", device_name="")
        .annotate(address=Subquery(latest_address.values("client_address")[:1]))
        .only(*_FIELDS[1:], "device_uuid", "state", "active_until", "first_authorized_at", "last_seen_at")
        .order_by("first_authorized_at", "pk")
    )
    chains: dict[tuple, list[list[Device]]] = {}
    for device in devices.iterator(chunk_size=2000):
        key = tuple(getattr(device, f) for f in _FIELDS[1:]) + (_family(device.address),)
        for chain in chains.setdefault(key, []):
            tail = chain[-1]
            if tail.last_seen_at <= device.first_authorized_at <= tail.last_seen_at + gap:
                chain.append(device)
                break
        else:
            chains[key].append([device])
    groups = []
    for key, found in chains.items():
        for chain in found:
            if len(chain) < 2:
                continue
            names = ("item", "client_type", "origin", "platform", "device_name", "sdk_version", "address_family")
            signature = {n: "" if v is None else str(v) for n, v in zip(names, key, strict=True)}
            groups.append(BurnGroup(signature=signature, devices=chain, now=now))
    groups.sort(key=lambda g: (-len(g.burned), -len(g.devices), g.devices[0].first_authorized_at))
    return groups


def seats_burned(project: Project, *, now: datetime) -> int:
    """The project's "seats burned" figure: seats held by devices a newer UUID of the same client
    has replaced."""
    return sum(len(g.burned) for g in burn_groups(project, now=now))
