"""A report's raw sightings, packed into ``UsageReport.raw_sightings`` (docs/insight.md), so a
what-if replay can deduplicate them again with another ``dedup_interval_ms`` (SPEC section 4).

Written by the report's own insert (``usage.hot_sql.insert_report``): no statement more, and
purged with the report. The blob is ``b"S1"``, then the number of sightings the server counted
when the report was recorded and the number of sightings (two unsigned 32-bit little-endian
integers), then zlib over the JSON ``[pairs, ts, frames, index]``: the distinct ``(format,
text)`` pairs, and per sighting in ``(ts_ms, frame)`` order the ``ts_ms`` and ``frame`` as
deltas from the previous one and the index of its pair. At most 10,000 sightings a report (SPEC
section 6): a few bytes each once compressed, the texts once each.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

from usage.dedup import Sighting

MAGIC = b"S1"
_HEADER = struct.Struct("<2sII")


class PackError(ValueError):
    """A blob that is not packed sightings."""


def pack(sightings: Sequence[Sighting], *, counted: int) -> bytes:
    """``sightings`` (any order) and how many of them the server counted, as one blob."""
    ordered = sorted(sightings, key=lambda s: (s.ts_ms, s.frame))  # stable: the rule's order
    index: dict[tuple[str, str], int] = {}
    ts, frames, refs = [], [], []
    last_ts = last_frame = 0
    for s in ordered:
        ts.append(s.ts_ms - last_ts)
        frames.append(s.frame - last_frame)
        last_ts, last_frame = s.ts_ms, s.frame
        refs.append(index.setdefault((s.format, s.text), len(index)))
    payload = json.dumps([list(index), ts, frames, refs], ensure_ascii=False, separators=(",", ":"))
    body = zlib.compress(payload.encode("utf-8", "surrogatepass"), 6)
    return _HEADER.pack(MAGIC, counted, len(ordered)) + body


def unpack(blob: bytes | memoryview) -> tuple[int, list[Sighting]]:
    """(how many the server counted when the report was recorded, the sightings in ``(ts_ms,
    frame)`` order)."""
    raw = bytes(blob)
    if len(raw) < _HEADER.size:
        raise PackError("too short for packed sightings")
    magic, counted, n = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise PackError(f"not packed sightings (magic {magic!r})")
    try:
        text = zlib.decompress(raw[_HEADER.size :]).decode("utf-8", "surrogatepass")
        pairs, ts, frames, refs = json.loads(text)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as e:
        raise PackError(f"packed sightings unreadable: {e}") from None
    if not len(ts) == len(frames) == len(refs) == n:
        raise PackError(f"{n} sightings announced, {len(ts)} packed")
    out: list[Sighting] = []
    at = frame = 0
    for dt, df, ref in zip(ts, frames, refs, strict=True):
        at, frame = at + dt, frame + df
        fmt, text = pairs[ref]
        out.append(Sighting(at, frame, fmt, text))
    return counted, out
