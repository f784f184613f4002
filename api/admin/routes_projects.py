"""Projects, their devices, usage and decisions (SPEC section 13), through the same services as
the admin and the portal: seats and remaining from ``devices.services``, usage rows from
``usage.exports``, order, key rotation and protection from their services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router

from api.admin.auth import get_visible, not_found, token_of
from api.admin.common import actor, invalid, time_filter, write
from api.admin.pagination import page, page_list
from api.admin.schemas import ERRORS, WRITE_ERRORS, OrderRequest, Page, ProtectionRequest, RotateKeyRequest
from devices import services as device_services
from devices import verdicts
from devices.models import OVERUSE_SPENT, Decision, Device
from devices.outcomes import CODE_NAMES
from devices.protection import ProtectionError, protection_state, set_protection
from devices.search import containing
from licenses import rules
from licenses.clock import rfc3339
from licenses.keys import rotate_key
from licenses.models import Project
from licenses.selectors import item_contract
from licenses.services import reorder_items
from usage.exports import export_rows

router = Router(tags=["projects"])
INT_COLUMNS = {"count", "active_devices", "limit", "overuse_devices"}


def _project(request: HttpRequest, id: str) -> Project:
    if not (id.isascii() and id.isdigit()) or len(id) > 18:
        raise not_found("project")
    return get_visible(Project.objects.select_related("organization"), token_of(request), "project", pk=int(id))


def item_state(item, *, now) -> dict[str, Any]:
    """An item with quantity, used, remaining and active seats, from the rules' homes."""
    counters = verdicts.counter_values(item)
    out = {**item_contract(item), "license_id": item.license.license_id}
    used: Any = None
    seats = None
    if item.option == rules.PER_BARCODE_SCAN:
        used = counters.get("barcode_scans", 0)
    elif item.option == rules.PER_PAGE:
        used = {m: counters.get(f"pages_{m}", 0) for m in verdicts.page_quotas(item)}
    elif item.option in (rules.PER_CLIENT_DEVICE, rules.PER_SERVER):
        seats = verdicts.active_seats(item, now=now)
        used = seats
    elif item.option == rules.PER_CONCURRENT_DEVICE:
        used = {"overuse_spent": counters.get(OVERUSE_SPENT, 0)}
    out.update(
        used=used,
        remaining=verdicts.remaining(item, now=now, counters=counters),
        active_seats=seats,
    )
    return out


def project_data(project: Project, *, with_key: bool, now) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(project.pk), "name": project.name, "organization_id": project.organization_id}
    if with_key:
        out["license_key"] = project.license_key
    out["protection"] = protection_state(project)
    out["items"] = [item_state(item, now=now) for item in project.items_in_order()]
    return out


@router.get("/projects/{id}", response={200: dict, **ERRORS}, summary="A project with its items")
def get_project(request: HttpRequest, id: str):
    """Items in consumption order with quantity, used, remaining and active seats; the license
    key for write tokens only."""
    project = _project(request, id)
    return project_data(project, with_key=token_of(request).can_write, now=timezone.now())


@router.put("/projects/{id}/order", response={200: dict, **WRITE_ERRORS}, summary="Set the consumption order")
def put_order(request: HttpRequest, id: str, payload: OrderRequest):
    project = _project(request, id)
    now = timezone.now()

    def run():
        have = sorted(str(pk) for pk in project.items.values_list("pk", flat=True))
        if sorted(payload.items) != have:
            raise invalid({"items": "must list every item of the project exactly once"})
        try:
            reorder_items(project=project, item_ids=payload.items, actor=actor(request), now=now)
        except ValidationError as e:
            raise invalid({"items": "; ".join(e.messages)}) from None
        return 200, project_data(project, with_key=True, now=now)

    return write(request, run, now=now)


@router.post("/projects/{id}/rotate-key", response={200: dict, **WRITE_ERRORS}, summary="Rotate the license key")
def post_rotate_key(request: HttpRequest, id: str, payload: RotateKeyRequest):
    project = _project(request, id)
    now = timezone.now()

    def run():
        rotated = rotate_key(project, grace_days=payload.grace_days, actor=actor(request), now=now)
        return 200, {
            "license_key": rotated.license_key,
            "old_key_expires_at": rfc3339(rotated.previous_key_expires_at or now),
        }

    return write(request, run, now=now)


@router.put("/projects/{id}/protection", response={200: dict, **WRITE_ERRORS}, summary="Set the project protection")
def put_protection(request: HttpRequest, id: str, payload: ProtectionRequest):
    project = _project(request, id)
    now = timezone.now()

    def run():
        try:
            set_protection(
                project,
                actor=actor(request),
                now=now,
                session_password=payload.session_password or None,
                clear_session_password=not payload.session_password,
                allowed_domains=payload.domains,
                allowed_app_ids=payload.app_ids,
                allowed_process_names=payload.process_names,
            )
        except ProtectionError as e:
            raise invalid(e.errors) from None
        return 200, protection_state(project)

    return write(request, run, now=now)


def device_data(device: Device) -> dict[str, Any]:
    return {
        "device_uuid": device.device_uuid,
        "item": None if device.item_id is None else str(device.item_id),
        "client_type": device.client_type,
        "origin": device.origin,
        "device_name": device.device_name,
        "platform": device.platform,
        "sdk_version": device.sdk_version,
        "state": device.state,
        "offline": device.offline,
        "first_authorized_at": rfc3339(device.first_authorized_at),
        "last_seen_at": rfc3339(device.last_seen_at),
        "active_until": rfc3339(device.active_until),
    }


DEVICE_STATES = {"active", "expired", "released", "offline"}


@router.get("/projects/{id}/devices", response={200: Page, **ERRORS}, summary="A project's devices")
def list_devices(
    request: HttpRequest,
    id: str,
    state: str | None = None,
    q: str | None = None,
    item: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
):
    project = _project(request, id)
    qs = Device.objects.filter(project=project)
    if state:
        if state not in DEVICE_STATES:
            raise invalid({"state": "must be active, expired, released or offline"})
        qs = qs.filter(offline=True) if state == "offline" else qs.filter(state=state)
    if q:
        qs = containing(qs, q, ("device_uuid", "device_name", "origin"))  # SPEC 13: uuid, name, origin
    if item:
        if not (item.isascii() and item.isdigit()) or len(item) > 18:
            raise invalid({"item": "must be an item id"})
        qs = qs.filter(item_id=int(item))
    return page(qs, limit=limit, cursor=cursor, render=device_data, when="first_authorized_at")


@router.post(
    "/projects/{id}/devices/{device_uuid}/release",
    response={200: dict, **WRITE_ERRORS},
    summary="Release a device's seat",
)
def release_device(request: HttpRequest, id: str, device_uuid: str):
    project = _project(request, id)
    device = Device.objects.filter(project=project, device_uuid=device_uuid).first()
    if device is None:
        raise not_found("device")
    now = timezone.now()

    def run():
        device_services.release_device(device=device, now=now, actor=actor(request))
        device.refresh_from_db()
        return 200, device_data(device)

    return write(request, run, now=now)


@router.get("/projects/{id}/usage", response={200: Page, **ERRORS}, summary="Usage or concurrency rows")
def get_usage(
    request: HttpRequest,
    id: str,
    what: str = "usage",
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
):
    """The rows of the SPEC section 9 CSV (``usage`` or ``concurrency``) as JSON objects,
    ``from`` inclusive, ``to`` exclusive (RFC 3339)."""
    return _usage(request, id, what, from_, to, limit, cursor)


def _usage(request: HttpRequest, id: str, what: str, start: str | None, end: str | None, limit, cursor):
    project = _project(request, id)
    if what not in ("usage", "concurrency"):
        raise invalid({"what": "must be usage or concurrency"})
    rows = export_rows(project=project, what=what, start=time_filter(start, "from"), end=time_filter(end, "to"))
    header = next(rows)
    data = [{k: (int(v) if k in INT_COLUMNS else v) for k, v in zip(header, row, strict=True)} for row in rows]
    data.reverse()  # newest first
    return page_list(data, limit=limit, cursor=cursor)


def decision_data(d: Decision) -> dict[str, Any]:
    return {
        "id": d.pk,
        "created_at": rfc3339(d.created_at),
        "endpoint": d.endpoint,
        "device_uuid": d.device_uuid,
        "item": None if d.item_id is None else str(d.item_id),
        "allowed": d.allowed,
        "code": d.code,
        "name": CODE_NAMES.get(d.code) if d.code else None,
        "rule": d.rule,
        "message": d.message,
        "counts": d.counts,
    }


@router.get("/projects/{id}/decisions", response={200: Page, **ERRORS}, summary="Authorization decisions")
def list_decisions(
    request: HttpRequest,
    id: str,
    device_uuid: str | None = None,
    allowed: bool | None = None,
    code: int | None = Query(None, ge=0, le=999),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
):
    """Each decision with the rule that decided it and the counts at that moment."""
    project = _project(request, id)
    qs = Decision.objects.filter(project=project)
    if device_uuid:
        qs = qs.filter(device_uuid=device_uuid)
    if allowed is not None:
        qs = qs.filter(allowed=allowed)
    if code is not None:
        qs = qs.filter(code=code)
    start, end = time_filter(from_, "from"), time_filter(to, "to")
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    return page(qs, limit=limit, cursor=cursor, render=decision_data)
