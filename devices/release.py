"""Release: a device gives its seat back (SPEC section 6, ``/release``), or an owner, staff or an
admin API token releases it. One function, ``release_device``, for the device API, the portal,
the admin and the admin API: the seat counter moves with the state (``devices.seats``), the
decision is recorded, a person's release is audited, and ``device.released`` is emitted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from devices.models import Decision, Device
from devices.outcomes import Verdict
from devices.requests import never_authorized, project_for_request, record_decision
from devices.seats import free_seat
from devices.verdicts import seat_counts
from licenses.audit import record_audit
from licenses.events import emit


def release_device(*, device: Device, now: datetime, actor=None) -> bool:
    """Give the device's seat back (uninstall, or staff/owner action). The device becomes
    ``released``; True when it was active (held or had just held a seat), False when there was
    nothing to free. Idempotent."""
    with transaction.atomic():
        locked = (
            Device.objects.select_for_update(of=("self",)).select_related("item__license", "project").get(pk=device.pk)
        )
        by = "device" if actor is None else "staff" if getattr(actor, "is_staff", False) else "customer"
        was = locked.state
        if was != Device.RELEASED:
            locked.state = Device.RELEASED
            if was == Device.ACTIVE:
                locked.ended_at = now
                free_seat(locked.item_id)  # the seat counter moves with it (devices.seats)
            locked.save(update_fields=["state", "ended_at"])
        counts = seat_counts(locked.item, now=now) if locked.item and locked.item.quantity is not None else {}
        if was == Device.RELEASED:
            verdict = Verdict(locked.item, True, "already_released", "the device was already released", counts=counts)
        else:
            verdict = Verdict(
                locked.item, True, f"released_by_{by}", f"released by {actor or 'the device'}", counts=counts
            )
        record_decision(
            project=locked.project,
            endpoint=Decision.RELEASE,
            verdict=verdict,
            now=now,
            device=locked,
            device_uuid=locked.device_uuid,
        )
        if actor is not None and was != Device.RELEASED:
            record_audit(
                actor=actor,
                action="device.release",
                obj=locked,
                before={"state": was},
                after={"state": locked.state},
                organization=locked.project.organization,
            )
        if was != Device.RELEASED:
            _emit_released(locked, actor, now=now)
        device.state, device.ended_at = locked.state, locked.ended_at
        return was == Device.ACTIVE


def _emit_released(device: Device, actor, *, now: datetime) -> None:
    """``device.released`` (SPEC 14), by the device, an owner, staff or an admin API token."""
    if actor is None:
        by = "device"
    elif isinstance(actor, str) and actor.startswith("token:"):
        by = "token"
    else:
        by = "staff" if getattr(actor, "is_staff", False) else "owner"
    emit(
        "device.released",
        {
            "organization": device.project.organization_id,
            "project": {"id": str(device.project_id), "name": device.project.name},
            "item": None if device.item_id is None else str(device.item_id),
            "device_uuid": device.device_uuid,
            "by": by,
        },
        organization=device.project.organization_id,
        now=now,
    )


def release(*, data, now: datetime) -> dict[str, Any]:
    """A device gives its seat back: ``{"status": "released"}`` for a known device, every time."""
    project = project_for_request(data, endpoint=Decision.RELEASE, now=now)
    device = Device.objects.filter(project=project, device_uuid=data.device_uuid).first()
    if device is None:
        raise never_authorized(project=project, endpoint=Decision.RELEASE, device_uuid=data.device_uuid, now=now)
    release_device(device=device, now=now)
    return {"status": "released"}
