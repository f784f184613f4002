"""Time as the SPEC writes it: slots, absolute 3-minute slices of UTC time (section 2:
``slot_start`` is always a multiple of 180 seconds since the Unix epoch; 480 a day), and RFC 3339
UTC strings (sections 6 and 9: ``YYYY-MM-DDTHH:MM:SSZ``). Every layer formats and parses here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def rfc3339(dt: datetime) -> str:
    """``2026-11-27T17:24:00Z``: the form of every time the API, exports and pages write."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_sql(col: str) -> str:
    """``rfc3339`` in PostgreSQL, for the export lines the database builds (usage.exports); NULL stays NULL."""
    return f"""to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


def parse_rfc3339(value: object) -> datetime:
    """An RFC 3339 date-time with its offset, as an aware UTC datetime; ValueError otherwise."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-27T17:24:00Z")
    text = value.upper().replace("Z", "+00:00").replace(" ", "T")
    if "." in text:  # Python takes at most microseconds
        head, rest = text.split(".", 1)
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date-time") from None


# The dates a person or a script may ask about (report ranges, job times): wide enough for any
# real question, far enough from datetime's own limits that a day or a slot added never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # exclusive


def within_range(dt: datetime) -> datetime:
    """``dt`` when it lies in [EARLIEST, LATEST); ValueError saying the range otherwise."""
    if not EARLIEST <= dt < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and 8999-12-31 (UTC), not {dt.isoformat()}")
    return dt


SLOT_SECONDS = 180
SLOT = timedelta(seconds=SLOT_SECONDS)
# How far a reported slot may be from the server's clock (SPEC section 6, INVALID_REQUEST).
MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slot_start_of(dt: datetime) -> datetime:
    """The start of the slot that contains ``dt`` (an aware datetime), in UTC."""
    elapsed = dt - _EPOCH
    whole = elapsed // SLOT  # floor division of timedeltas: an int
    return _EPOCH + whole * SLOT


def slot_end_of(slot_start: datetime) -> datetime:
    return slot_start + SLOT


def is_slot_boundary(dt: datetime) -> bool:
    return slot_start_of(dt) == dt


def slot_start_problem(slot_start: datetime, *, now: datetime) -> str | None:
    """Why a reported ``slot_start`` is refused (INVALID_REQUEST), or None when it is acceptable."""
    if not is_slot_boundary(slot_start):
        return "must be on a 3-minute boundary (a multiple of 180 seconds since the Unix epoch)"
    if slot_start - now > MAX_FUTURE:
        return "is more than 5 minutes in the future"
    if now - slot_start > MAX_AGE:
        return "is more than 30 days old"
    return None
