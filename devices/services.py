"""Authorization, release and seat counting: the rules of SPEC section 4 for the device API.

Services take ``now``; only the API views read the clock. Every decision, allowed or refused,
is written as a ``Decision`` with the item it looked at, the rule that decided, the message, and
the counts and limits at that moment.

Seats never overshoot: a new seat is taken in one short transaction that locks the item row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite runs IMMEDIATE transactions, which take the
database write lock at BEGIN), counts the active devices of the item, and inserts or updates the
device before it commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Subquery

from devices.context import client_address
from devices.models import Decision, Device
from devices.outcomes import (
    DEVICE_NOT_AUTHORIZED,
    DOMAIN_MISMATCH,
    LICENSE_KEY_INVALID,
    NO_MATCHING_LICENSE,
    Refusal,
    Verdict,
)
from devices.seats import free_seat
from devices.verdicts import (
    active_until_for,
    choose_refusal,
    item_verdict,
    remaining,
    remaining_after,
    seat_counts,
    serves,
)
from licenses import rules
from licenses.clock import rfc3339
from licenses.domains import normalize_origin
from licenses.events import emit
from licenses.keys import previous_key_valid
from licenses.models import LicenseItem, Project

REPORT_INTERVAL_S = 180


def record_decision(
    *, project: Project, endpoint: str, verdict: Verdict, now: datetime, device: Device | None = None, device_uuid: str
) -> Decision:
    return Decision.objects.create(
        project=project,
        device=device,
        device_uuid=device_uuid,
        item=verdict.item,
        endpoint=endpoint,
        allowed=verdict.allowed,
        code=verdict.code,
        rule=verdict.rule,
        message=verdict.message[:500],
        counts=verdict.counts,
        created_at=now,
        client_address=client_address(),
    )


def project_for_key(license_key: str, *, now: datetime) -> Project:
    """The project of a license key, its current one or, until its grace ends, the one before the
    last rotation (SPEC section 2); else the 101 refusal. One query over two unique indexes."""
    project = Project.objects.filter(Q(license_key=license_key) | Q(previous_license_key=license_key)).first()
    if project is None or (project.license_key != license_key and not previous_key_valid(project, now)):
        raise Refusal(LICENSE_KEY_INVALID, "no project has this license key", rule="license_key_invalid")
    return project


def project_for_request(data, *, endpoint: str, now: datetime) -> Project:
    """Key (101), then the project's session password (102, SPEC section 6): the first checks of
    every device request after its shape and the rate limits. A refused password is recorded."""
    from devices.protection import session_password_verdict

    project = project_for_key(data.license_key, now=now)
    verdict = session_password_verdict(project, getattr(data, "session_password", None))
    if verdict is not None:
        record_decision(project=project, endpoint=endpoint, verdict=verdict, now=now, device_uuid=data.device_uuid)
        raise Refusal.of(verdict)
    return project


def origin_verdict(data, http_origin: str | None) -> tuple[str | None, Verdict | None]:
    """The origin the domain rules use (SPEC section 6, "Browsers"): the HTTP ``Origin`` header
    when the request has one (a page script cannot forge it), else the body's. A web request whose
    body ``origin`` differs from the header, after normalization, is refused with 103."""
    if http_origin is None or data.client_type != "web":
        return data.origin, None
    try:
        header = normalize_origin(http_origin)
    except ValueError:
        header = None
    if header is None or header != data.origin:
        message = f"the body's origin {data.origin} is not the request's Origin header {http_origin[:300]}"
        return data.origin, Verdict(None, False, "origin_header_mismatch", message, code=DOMAIN_MISMATCH)
    return header, None


def never_authorized(*, project: Project, endpoint: str, device_uuid: str, now: datetime) -> Refusal:
    """Usage or release from a device this project never authorized (code 4), recorded."""
    verdict = Verdict(
        None, False, "device_not_authorized", "this project never authorized this device", code=DEVICE_NOT_AUTHORIZED
    )
    record_decision(project=project, endpoint=endpoint, verdict=verdict, now=now, device_uuid=device_uuid)
    return Refusal.of(verdict)


_DEVICE_FIELDS = ("id", "state", "item_id", "active_until", "offline", "client_type", "origin")


def items_and_device(project: Project, device_uuid: str) -> tuple[list[LicenseItem], Device | None]:
    """The project's items in consumption order and its device ``device_uuid`` (or None), in one
    statement: the device's columns ride on each item row as subqueries of the unique
    (project, device_uuid) index. A project without items reads the device on its own."""
    mine = Device.objects.filter(project=project, device_uuid=device_uuid)
    fields = {f"_device_{name}": Subquery(mine.values(name)[:1]) for name in _DEVICE_FIELDS}
    items = list(project.items_in_order().annotate(**fields))
    if not items:
        return items, mine.first()
    first = items[0]
    if first._device_id is None:  # type: ignore[attr-defined]  # annotated above
        return items, None
    values = {name: getattr(first, f"_device_{name}") for name in _DEVICE_FIELDS}
    device = Device(project=project, device_uuid=device_uuid, **values)
    device._state.adding = False
    return items, device


# --- local licenses ----------------------------------------------------------------------------


def local_license(
    *,
    project: Project,
    device: Device,
    item: LicenseItem,
    remaining: dict[str, Any],
    now: datetime,
    offline: bool = False,
) -> str:
    """The device's local license (SPEC section 7): a web device's token names its origin, and an
    offline registration's (``offline=True``, SPEC section 12) says so and runs to the device's
    ``active_until``, the seat it holds, on a first_use item as on any other."""
    from devices.signing import sign_local_license

    exp = device.active_until
    claims: dict[str, Any] = {
        "iss": settings.BASE_URL,
        "sub": device.device_uuid,
        "iat": int(now.timestamp()),
        "exp": 0,
        "license_key": project.license_key,
        "item": item.item_id,
        "product": item.product,
        "option": item.option,
        "remaining": remaining,
    }
    if item.option == rules.PER_CLIENT_DEVICE:
        claims["period_s"] = item.period_seconds
        if item.activation_basis == "first_use" and not offline:
            exp = item.license.expires_at  # the SDK starts the period's clock at first use
    if device.client_type == "web":
        claims["origin"] = device.origin  # the SDK refuses the token on any other origin
    if offline:
        claims["offline"] = True
    claims["exp"] = int(exp.timestamp())
    return sign_local_license(claims)


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


def check_validation_fields(
    project: Project, data, *, origin: str | None, endpoint: str, now: datetime, refused: Verdict | None = None
) -> None:
    """The project's validation fields (103, 114), recorded and raised when they refuse."""
    from devices.protection import validation_verdict

    verdict = refused or validation_verdict(
        project,
        client_type=data.client_type,
        origin=origin,
        app_id=data.app_id,
        process_name=data.process_name,
        platform=data.platform,
    )
    if verdict is not None:
        device = Device.objects.filter(project=project, device_uuid=data.device_uuid).first()
        record_decision(
            project=project, endpoint=endpoint, verdict=verdict, now=now, device=device, device_uuid=data.device_uuid
        )
        raise Refusal.of(verdict)


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
        record_decision(
            project=project,
            endpoint=endpoint,
            verdict=verdict,
            now=now,
            device=device,
            device_uuid=data.device_uuid,
        )
        raise Refusal.of(verdict)
    for attempt in range(3):
        try:
            if attempt:
                device = Device.objects.filter(project=project, device_uuid=data.device_uuid).first()
            with transaction.atomic():
                answer = _authorize_locked(
                    project, data, matching, device=device, origin=origin, now=now, offline=offline
                )
            if isinstance(answer, Refusal):
                raise answer  # after the commit: the refusal's decision is kept
            return answer()  # the body and its local license, built and signed after the commit
        except IntegrityError:
            # The same new device_uuid authorized twice at once, or the device changed under
            # this request (``_bind``): the loser runs again on the device as it is now.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


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
    record_decision(
        project=project,
        endpoint=endpoint,
        verdict=refusal,
        now=now,
        device=device,
        device_uuid=data.device_uuid,
    )
    return Refusal.of(refusal)


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
    if device is None:
        # A concurrent insert of this uuid raises IntegrityError: the whole authorization is
        # retried (``grant``), its seat counter change rolled back with it.
        return Device.objects.create(project=project, device_uuid=data.device_uuid, first_authorized_at=now, **values)
    if device.state == Device.ACTIVE and device.item_id != item.pk:
        free_seat(device.item_id)  # it leaves an item it was counted on (devices.seats)
    # Written only if its state and item are still those read: a concurrent authorization,
    # release or expiry in between makes this request run again (the seat counter stays exact).
    written = Device.objects.filter(pk=device.pk, state=device.state, item_id=device.item_id).update(**values)
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


# --- release -----------------------------------------------------------------------------------


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
            from licenses.services import record_audit

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
