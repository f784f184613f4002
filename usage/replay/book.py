"""The in-memory state a what-if replay gives the API's rules instead of the database: the seat
book (``ReplaySeats``) and, for a changed dedup interval, the dedup memory (``ReplayDedup``)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime

from devices.models import Device
from devices.seats import Take, seat_refused
from licenses.models import LicenseItem
from usage.dedup import Sighting, count_sightings

# The dedup memory forgets a barcode once the device's newest sighting is this much more than
# the interval past it: only a sighting that many milliseconds older than the device's newest one
# (a clock run back) could count where the live memory said it did not.
DEDUP_MARGIN_MS = 3_600_000


class ReplaySeats:
    """The seat book of a replay: the two queries ``seat_verdict`` makes (``held``, ``take``),
    answered from the replay's devices. ``take`` only answers; the replay binds the device."""

    def __init__(self, devices: dict[str, Device]) -> None:
        self.devices = devices
        self._until: list[tuple[datetime, str]] = []  # a heap of (active_until, uuid), lazily cleaned
        self.active: set[str] = set()

    def track(self, device: Device) -> None:
        if device.state == Device.ACTIVE and device.item_id is not None:
            self.active.add(device.device_uuid)
            heapq.heappush(self._until, (device.active_until, device.device_uuid))
            if len(self._until) > 4 * len(self.active) + 64:  # every contact pushes: keep it O(devices)
                self._until = [(self.devices[u].active_until, u) for u in self.active]
                heapq.heapify(self._until)
        else:
            self.active.discard(device.device_uuid)

    def _clean(self, now: datetime) -> None:
        while self._until and self._until[0][0] <= now:
            until, uuid = heapq.heappop(self._until)
            device = self.devices.get(uuid)
            if device is not None and uuid in self.active and not device.holds_seat(now):
                self.active.discard(uuid)

    def held(self, item: LicenseItem, *, now: datetime) -> int:
        self._clean(now)
        return len(self.active)

    def take(self, item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str = "") -> Take:
        self._clean(now)
        others = len(self.active - {device_uuid})
        return Take(not seat_refused(item, others), others)


class ReplayDedup:
    """The dedup memory of a replay (SPEC section 4, per_barcode_scan): per device, the latest
    ``ts_ms`` it saw each format and text, counted or not, living across reports as the
    server's ``SightingMemory`` does; ``usage.dedup.count_sightings`` (the rule's one home) reads
    it and says what moves. Memory stays bounded: a device's barcodes not seen within the
    interval plus ``DEDUP_MARGIN_MS`` of its newest sighting are forgotten."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self.memory: dict[str, dict[str, int]] = {}
        self._newest: dict[str, int] = {}
        self._kept: dict[str, int] = {}  # a device's memory size after it was last pruned

    def count(self, device_uuid: str, sightings: Sequence[Sighting]) -> int:
        """How many of one report's sightings count, the memory moved as the server moves it."""
        memory = self.memory.setdefault(device_uuid, {})
        counted, last = count_sightings(sightings, interval_ms=self.interval_ms, memory=memory)
        memory.update(last)
        newest = max(self._newest.get(device_uuid, 0), max(last.values(), default=0))
        self._newest[device_uuid] = newest
        if len(memory) > 2 * self._kept.get(device_uuid, 0) + 256:
            cutoff = newest - self.interval_ms - DEDUP_MARGIN_MS
            memory = {key: ts for key, ts in memory.items() if ts >= cutoff}
            self.memory[device_uuid] = memory
            self._kept[device_uuid] = len(memory)
        return counted

    def size(self) -> int:
        return sum(len(m) for m in self.memory.values())
