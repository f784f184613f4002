"""The outbox of SPEC section 14: ``emit`` writes a webhook event in the caller's transaction,
so an event exists exactly when the change it describes was committed. The lowest layer that
makes a change calls it (issuing here, release in devices, the jobs in usage); ``usage.webhooks``
delivers the events.

Also the event payloads that several layers share (a license as the admin API shows it)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from .clock import rfc3339
from .models import License, Organization, OutboxEvent
from .selectors import item_contract

# Every event type of the SPEC section 14 table.
EVENT_TYPES = (
    "license.created",
    "license.suspended",
    "license.resumed",
    "license.revoked",
    "license.expiring",
    "usage.threshold_crossed",
    "devices.refused",
    "devices.expired",
    "device.released",
    "project.key_rotated",
    "project.anomaly",  # key sharing or clone flags of a project for a day (usage.anomalies)
)
STATUS_EVENTS = {
    License.ACTIVE: "license.resumed",
    License.SUSPENDED: "license.suspended",
    License.REVOKED: "license.revoked",
}


def new_event_id() -> str:
    """``evt_`` + 128 random bits: the ``webhook-id`` receivers deduplicate by."""
    return "evt_" + secrets.token_hex(16)


def emit(
    event_type: str, data: dict[str, Any], *, organization: Organization | str | None, now: datetime
) -> OutboxEvent:
    """Write one event for delivery; call it inside the transaction of the change."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    organization_id = organization.pk if isinstance(organization, Organization) else organization
    return OutboxEvent.objects.create(
        event_id=new_event_id(), type=event_type, organization_id=organization_id, data=data, occurred_at=now
    )


def license_data(license: License) -> dict[str, Any]:
    """A license as the admin API shows it (SPEC section 13): its project is that of its items
    (the name; a license's items sit in one project when imported), items as ``import_license``
    prints them."""
    # ``all()`` uses a ``prefetch_related("items__project")`` of the caller's list when there is one.
    items = sorted(license.items.all(), key=lambda item: item.pk)
    return {
        "license_id": license.license_id,
        "organization_id": license.organization_id,
        "project": items[0].project.name if items else None,
        "status": license.status,
        "starts_at": rfc3339(license.starts_at),
        "expires_at": rfc3339(license.expires_at),
        "items": [item_contract(item) for item in items],
    }
