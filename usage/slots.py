"""Slots: absolute 3-minute slices of UTC time (SPEC section 2). ``slot_start`` is always a
multiple of 180 seconds since the Unix epoch; there are 480 slots a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
