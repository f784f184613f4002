"""Server-side deduplication of barcode sightings (SPEC section 4, per_barcode_scan).

A sighting is ``(ts_ms, frame, format, text)``. Sightings are taken in ``(ts_ms, frame)`` order.
Within one frame identical barcodes (same format and text) count once. A sighting counts when
``ts_ms - last > interval``, where ``last`` is the latest ``ts_ms`` at which the device saw that
format and text, counted or not; ``last`` moves on every sighting. The memory (``SightingMemory``)
lives across reports, so a barcode held in front of the camera across two reports counts once.

A sighting older than the memory (a report that arrives out of order) never counts: the memory
keeps only the latest time, so the server cannot tell whether it was a repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from usage.hot_sql import remember_sightings


@dataclass(frozen=True)
class Sighting:
    ts_ms: int
    frame: int
    format: str
    text: str


def sighting_key(format: str, text: str) -> str:
    """sha256 of format NUL text: fixed length, indexes well whatever the barcode holds."""
    raw = format.encode("utf-8", "surrogatepass") + b"\x00" + text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


def count_sightings(
    sightings: Iterable[Sighting], *, interval_ms: int, memory: Mapping[str, int]
) -> tuple[int, dict[str, int]]:
    """The pure rule: (how many sightings count, the new ``last`` per key touched).

    ``memory`` maps key -> latest ts_ms seen before these sightings."""
    last: dict[str, int] = {}
    counted_in_frame: set[tuple[int, str]] = set()
    counted = 0
    for s in sorted(sightings, key=lambda s: (s.ts_ms, s.frame)):
        key = sighting_key(s.format, s.text)
        previous = last.get(key, memory.get(key))
        frame_id = (s.frame, key)
        if frame_id in counted_in_frame:
            pass  # identical barcode in the same frame: once
        elif previous is None or s.ts_ms - previous > interval_ms:
            counted += 1
            counted_in_frame.add(frame_id)
        last[key] = s.ts_ms if previous is None else max(previous, s.ts_ms)
    return counted, last


def dedup_sightings(*, device, sightings: list[Sighting], interval_ms: int, now: datetime) -> int:
    """Count the sightings of one report against the device's memory (``SightingMemory``) and
    store the new memory, in one statement on PostgreSQL (``usage.hot_sql.remember_sightings``).

    The memory stored is what ``count_sightings`` says: ``last`` of a key is the latest time it
    was seen, in this report or before, so the statement stores each key's latest time in this
    report (the rule run without memory) and keeps the later of it and the stored one. The
    caller holds the device's row lock (one report of a device at a time)."""
    if not sightings:
        return 0
    _, seen = count_sightings(sightings, interval_ms=interval_ms, memory={})
    memory = remember_sightings(device.pk, seen, now=now)
    return count_sightings(sightings, interval_ms=interval_ms, memory=memory)[0]
