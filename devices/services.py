"""Authorization and offline registration: the rules of SPEC section 4 for the device API.

Services take ``now``; only the API views read the clock. Every decision, allowed or refused,
is written as a ``Decision`` (``devices.requests.record_decision``) with the item it looked at,
the rule that decided, the message, and the counts and limits at that moment.

Seats never overshoot: a new seat is taken in one short transaction that locks the item row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite runs IMMEDIATE transactions, which take the
database write lock at BEGIN), counts the active devices of the item, and inserts or updates the
device before it commits.

The other device services have their own modules: the checks every request starts with and the
decision record (``devices/requests.py``), release (``devices/release.py``), the local license's
claims (``devices/local_license.py``). They are imported here too, so ``devices.services`` stays
the one place callers above the devices layer import the device API's services from.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction

from devices.context import user_agent
from devices.hot_sql import DEVICE_FIELDS, items_with_device
from devices.local_license import local_license
from devices.models import Decision, Device
from devices.outcomes import NO_MATCHING_LICENSE, Refusal, Verdict
from devices.prepared import PreparedInsert, update_where
from devices.release import release, release_device
from devices.requests import (
    check_validation_fields,
    never_authorized,
    origin_verdict,
    project_for_key,
    project_for_request,
    record_decision,
    refuse,
)
from devices.seats import ExactWayFirst, fast_shares, free_seat
from devices.verdicts import active_until_for, choose_refusal, item_verdict, remaining, remaining_after, serves
from licenses import rules
from licenses.clock import rfc3339
from licenses.models import LicenseItem, Project

__all__ = [
    "OFFLINE_OPTIONS",
    "REPORT_INTERVAL_S",
    "authorize",
    "authorized_body",
    "check_validation_fields",
    "grant",
    "items_and_device",
    "local_license",
    "never_authorized",
    "offline_active_until",
    "origin_verdict",
    "project_for_key",
    "project_for_request",
    "record_decision",
    "refuse",
    "release",
    "release_device",
]

REPORT_INTERVAL_S = 180


_DEVICE_FIELDS = DEVICE_FIELDS


_DEVICE = PreparedInsert(Device)  # its INSERT compiled once per connection (devices.prepared)


def items_and_device(project: Project, device_uuid: str) -> tuple[list[LicenseItem], Device | None]:
    """The project's items in consumption order and its device ``device_uuid`` (or None), in one
    statement: the device's columns ride on each item row as subqueries of the unique
    (project, device_uuid) index. A project without items reads the device on its own."""
    items = items_with_device(project, device_uuid)  # compiled once per connection (devices.hot_sql)
    if not items:
        return items, Device.objects.filter(project=project, device_uuid=device_uuid).first()
    first = items[0]
    if first._device_id is None:  # type: ignore[attr-defined]  # annotated above
        return items, None
    values = {name: getattr(first, f"_device_{name}") for name in _DEVICE_FIELDS}
    device = Device(project=project, device_uuid=device_uuid, **values)
    device._state.adding = False
    return items, device


# --- authorize ---------------------------------------------------------------------------------


def authorize(*, data, now: datetime, http_origin: str | None = None) -> dict[str, Any]:
    """Authorize a device (SPEC section 6, ``data``: a validated ``api.schemas.AuthorizeRequest``;
    ``http_origin``: the request's ``Origin`` header, if any): the answer's body, or a ``Refusal``.
    Checks in the SPEC's order: key (101), session password (102), the validation fields (103,
    114), then the rules of the items."""
    project = project_for_request(data, endpoint=Decision.AUTHORIZE, now=now)
    origin, refused = origin_verdict(data, http_origin)
    check_validation_fields(project, data, origin=origin, endpoint=Decision.AUTHORIZE, now=now, refused=refused)
    return grant(project, data, origin=origin, now=now)


OFFLINE_OPTIONS = (rules.PER_CLIENT_DEVICE, rules.PER_SERVER)  # SPEC section 12


def grant(project: Project, data, *, origin: str | None, now: datetime, offline: bool = False) -> dict[str, Any]:
    """The rules of the items (SPEC section 4) for an authorization or, with ``offline``, an
    offline registration (SPEC section 12: per_client_device and per_server items only)."""
    endpoint = Decision.OFFLINE if offline else Decision.AUTHORIZE
    wanted = {"product": data.product, "edition": data.edition, "addon": data.addon, "client_type": data.client_type}
    items, device = items_and_device(project, data.device_uuid)
    matching = [item for item in items if serves(item, **wanted) and (not offline or item.option in OFFLINE_OPTIONS)]
    if not matching:
        what = " ".join(f"{k} {v}" for k, v in wanted.items() if v)
        kind = "an offline registration for " if offline else ""
        message = f"no item of this project serves {kind}{what}"
        verdict = Verdict(None, False, "no_matching_item", message, code=NO_MATCHING_LICENSE)
        raise refuse(verdict, project=project, endpoint=endpoint, now=now, device=device, device_uuid=data.device_uuid)
    attempt, fast = 0, True
    while True:
        try:
            if attempt or not fast:
                device = Device.objects.filter(project=project, device_uuid=data.device_uuid).first()
            with fast_shares(fast), transaction.atomic():
                answer = _authorize_locked(
                    project, data, matching, device=device, origin=origin, now=now, offline=offline
                )
            if isinstance(answer, Refusal):
                raise answer  # after the commit: the refusal's decision is kept
            return answer()  # the body and its local license, built and signed after the commit
        except ExactWayFirst:
            fast = False  # the device's share of the seat counter had no seat left: the exact way
        except IntegrityError:
            # The same new device_uuid authorized twice at once, or the device changed under
            # this request (``_bind``): the loser runs again on the device as it is now.
            attempt += 1
            if attempt == 3:
                raise


def _authorize_locked(
    project: Project,
    data,
    matching: list[LicenseItem],
    *,
    device: Device | None,
    origin: str | None,
    now: datetime,
    offline: bool = False,
) -> Callable[[], dict[str, Any]] | Refusal:
    """The verdicts and the writes, in one transaction; the answer's body is built by the caller
    after the commit. ``device`` is as read before the transaction: ``_bind`` writes it only if
    its state and item are still those (else the authorization is retried)."""
    endpoint = Decision.OFFLINE if offline else Decision.AUTHORIZE
    candidates = list(matching)
    if device is not None and device.item_id in {i.pk for i in matching}:
        # A device bound to an item that still serves it stays there (and never takes a second seat).
        bound = device.item_id
        candidates.sort(key=lambda i: i.pk != bound)
    verdicts: dict[int, Verdict] = {}
    for item in candidates:
        verdict = item_verdict(item, device, origin=origin, now=now, device_uuid=data.device_uuid)
        if verdict.allowed:
            device = _bind(project, device, item, data, now=now, offline=offline)
            record_decision(
                project=project,
                endpoint=endpoint,
                verdict=verdict,
                now=now,
                device=device,
                device_uuid=data.device_uuid,
            )
            left = remaining_after(item, verdict, now=now)
            return partial(authorized_body, project, device, item, now=now, offline=offline, left=left)
        verdicts[item.pk] = verdict
    refusal = choose_refusal([verdicts[i.pk] for i in matching])
    return refuse(refusal, project=project, endpoint=endpoint, now=now, device=device, device_uuid=data.device_uuid)


def offline_active_until(item: LicenseItem, *, now: datetime) -> datetime:
    """SPEC section 12: ``min(now + period, expires_at)`` for per_client_device items,
    ``min(now + 365 days, expires_at)`` for per_server items."""
    if item.option == rules.PER_SERVER:
        return min(now + timedelta(days=365), item.license.expires_at)
    return active_until_for(item, now=now)


def _bind(
    project: Project, device: Device | None, item: LicenseItem, data, *, now: datetime, offline: bool = False
) -> Device:
    until = offline_active_until(item, now=now) if offline else active_until_for(item, now=now)
    if device is not None and device.offline and not offline and device.item_id == item.pk:
        until = max(until, device.active_until)  # an offline seat is held to its token's exp
    values = {
        "item": item,
        "client_type": data.client_type,
        "state": Device.ACTIVE,
        "authorized_at": now,
        "last_seen_at": now,
        "active_until": until,
        "ended_at": None,
        "offline": offline,
    }
    if data.origin:
        values["origin"] = data.origin
    for name in ("platform", "device_name", "sdk_version"):
        if getattr(data, name) is not None:
            values[name] = getattr(data, name)
    agent = user_agent()  # the HTTP request's, for seat burn; written in this insert or update
    if agent is not None:
        values["user_agent"] = agent
    if device is None:
        # A concurrent insert of this uuid raises IntegrityError: the whole authorization is
        # retried (``grant``), its seat counter change rolled back with it.
        return _DEVICE.create(project=project, device_uuid=data.device_uuid, first_authorized_at=now, **values)
    if device.state == Device.ACTIVE and device.item_id != item.pk:
        free_seat(device.item_id)  # it leaves an item it was counted on (devices.seats)
    # Written only if its state and item are still those read: a concurrent authorization,
    # release or expiry in between makes this request run again (the seat counter stays exact).
    written = update_where(Device, values, {"id": device.pk, "state": device.state, "item": device.item_id})
    if not written:
        raise IntegrityError("the device changed during its authorization")
    for name, value in values.items():
        setattr(device, name, value)
    return device


def authorized_body(
    project: Project,
    device: Device,
    item: LicenseItem,
    *,
    now: datetime,
    offline: bool = False,
    left: dict[str, Any] | None = None,
) -> dict[str, Any]:
    left = remaining(item, now=now) if left is None else left
    body: dict[str, Any] = {
        "status": "authorized",
        "device_uuid": device.device_uuid,
        "item": {"id": item.item_id, "product": item.product, "option": item.option},
        "active_until": rfc3339(device.active_until),
        "report_interval_s": REPORT_INTERVAL_S,
    }
    if item.option == rules.PER_BARCODE_SCAN:
        body["dedup_interval_ms"] = item.dedup_interval_ms
    body["remaining"] = left
    body["local_license"] = local_license(
        project=project, device=device, item=item, remaining=left, now=now, offline=offline
    )
    return body
