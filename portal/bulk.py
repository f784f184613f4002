"""Releasing idle devices in bulk, and undoing it within 10 minutes (SPEC section 10: a
destructive action confirms and says what it will do). Releases go through
devices.services.release_device, one device at a time, as the portal's single Release does.

Each bulk release (of idle devices, or of a seat-burn group's older UUIDs) is a
``devices.models.ReleaseBatch`` row: who, when, which devices, until when it can be undone. Any
owner of the organization can undo it from the project's page or the release page, in any
browser, until ``undo_until``; after that, or once undone, it is refused with the reason.

An undo gives a device its seat back only if nothing changed since: it is still the release of
that batch (``ended_at`` is the batch's instant), its ``active_until`` has not passed, and its
item still has room under its seat ceiling (``devices.seats.take_seat``, as an authorization)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction

from devices.models import Decision, Device, ReleaseBatch
from devices.outcomes import Verdict
from devices.seats import take_seat
from devices.services import record_decision, release_device
from portal.summaries import SEAT_OPTIONS

UNDO_WINDOW = timedelta(minutes=10)
MAX_BULK = 1000  # one request releases at most this many; the page says so


def holds_seat(device: Device, now: datetime) -> bool:
    """Whether Release would free a seat: a client-device or server item's device that is active
    and ``now < active_until`` (SPEC section 4). Scan, page, domain and concurrent devices hold none."""
    return device.item is not None and device.item.option in SEAT_OPTIONS and device.holds_seat(now)


def idle_devices(project, *, idle_days: int, now: datetime):
    """Devices of the project holding a seat and not seen for more than ``idle_days`` days."""
    return (
        Device.objects.holding_seat(now)
        .filter(
            project=project,
            item__option__in=SEAT_OPTIONS,
            last_seen_at__lt=now - timedelta(days=idle_days),
        )
        .select_related("item")
        .order_by("last_seen_at", "id")
    )


def release_idle(project, *, idle_days: int, actor, now: datetime) -> list[int]:
    """Release the idle devices; the ids of those whose seat was freed."""
    released = []
    for device in list(idle_devices(project, idle_days=idle_days, now=now)[:MAX_BULK]):
        if release_device(device=device, now=now, actor=actor):
            released.append(device.pk)
    return released


def record_batch(project, *, kind: str, device_ids: list[int], actor, now: datetime) -> ReleaseBatch:
    """Keep a bulk release for its undo (``undo_until`` 10 minutes on)."""
    return ReleaseBatch.objects.create(
        project=project,
        kind=kind,
        released_by=actor if getattr(actor, "pk", None) else None,
        released_at=now,
        undo_until=now + UNDO_WINDOW,
        device_ids=sorted(device_ids),
    )


def open_batches(project, *, now: datetime):
    """The project's bulk releases that can still be undone, newest first."""
    return (
        ReleaseBatch.objects.filter(project=project, undone_at=None, undo_until__gte=now)
        .exclude(device_ids=[])
        .select_related("released_by")
        .order_by("-released_at", "-pk")
    )


@dataclass
class Undo:
    """What an undo did: ``refused`` says why nothing was tried (too late, already undone)."""

    restored: int = 0
    skipped: int = 0
    refused: str | None = None


def undo_batch(batch: ReleaseBatch, *, actor, now: datetime) -> Undo:
    """Undo a bulk release once, within its window: the claim (``undone_at`` set by a
    conditional update) commits with the seats given back, so two owners undoing at once give
    them back once."""
    if batch.undone_at is not None:
        who = f" by {batch.undone_by.get_username()}" if batch.undone_by else ""
        return Undo(refused=f"Already undone{who}.")
    if now > batch.undo_until:
        return Undo(refused=_too_late(batch))
    with transaction.atomic():
        claimed = ReleaseBatch.objects.filter(pk=batch.pk, undone_at=None, undo_until__gte=now).update(
            undone_at=now, undone_by=actor if getattr(actor, "pk", None) else None
        )
        if not claimed:
            batch.refresh_from_db()
            if batch.undone_at is not None:
                return Undo(refused="Already undone.")
            return Undo(refused=_too_late(batch))
        restored, skipped = undo_release(
            batch.project, device_ids=batch.device_ids, released_at=batch.released_at, actor=actor, now=now
        )
    return Undo(restored=restored, skipped=skipped)


def _too_late(batch: ReleaseBatch) -> str:
    at, until = batch.released_at.astimezone(UTC), batch.undo_until.astimezone(UTC)
    return (
        "Too late to undo: a release can be undone for 10 minutes, and this one "
        f"(at {at:%Y-%m-%d %H:%M} UTC) could be until {until:%H:%M} UTC."
    )


def undo_release(project, *, device_ids: list[int], released_at: datetime, actor, now: datetime) -> tuple[int, int]:
    """(restored, not restored) for devices released at ``released_at`` (``undo_batch`` claims
    the batch first). Each device takes its seat back through devices.seats.take_seat, the
    same allocation an authorization makes, so the seat ceiling holds whatever else happened
    since."""
    from licenses.services import record_audit

    if now - released_at > UNDO_WINDOW:
        return 0, len(device_ids)
    restored = 0
    for pk in sorted(device_ids):
        with transaction.atomic():
            d = (
                Device.objects.select_for_update(of=("self",))
                .select_related("item__license")
                .filter(project=project, pk=pk)
                .first()
            )
            if d is None or d.item is None or d.state != Device.RELEASED or d.ended_at != released_at:
                continue  # authorized again, or released by something else since
            if d.active_until <= now:
                continue  # its seat would have run out by now anyway
            take = take_seat(d.item, d, now=now, device_uuid=d.device_uuid)
            if not take.taken:
                continue
            d.state, d.ended_at = Device.ACTIVE, None
            d.save(update_fields=["state", "ended_at"])
            restored += 1
            item = d.item
            counts = {"active": take.others, "quantity": item.quantity, "ceiling": item.seat_ceiling}
            verdict = Verdict(item, True, "release_undone", f"release undone by {actor}", counts=counts)
            record_decision(
                project=project,
                endpoint=Decision.RELEASE,
                verdict=verdict,
                now=now,
                device=d,
                device_uuid=d.device_uuid,
            )
            record_audit(
                actor=actor,
                action="device.release_undo",
                obj=d,
                before={"state": Device.RELEASED},
                after={"state": Device.ACTIVE},
                organization=project.organization,
            )
    return restored, len(device_ids) - restored
