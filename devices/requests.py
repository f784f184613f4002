"""The checks every device request starts with (SPEC section 6) and the decision it records.

In the SPEC's order: the license key (101), the project's session password (102), then the
validation fields (103, 114); a refused check is recorded as a ``Decision`` and raised as a
``Refusal`` (``refuse``). ``record_decision`` is the one writer of decisions: the item looked at, the rule
that decided, the message, and the counts and limits at that moment (the pages of SPEC section
10 and the admin API of section 13 show them)."""

from __future__ import annotations

from datetime import datetime

from devices.context import client_address
from devices.hot_sql import project_by_key
from devices.models import Decision, Device
from devices.outcomes import DEVICE_NOT_AUTHORIZED, DOMAIN_MISMATCH, LICENSE_KEY_INVALID, Refusal, Verdict
from devices.prepared import PreparedInsert
from devices.protection import session_password_verdict, validation_verdict
from licenses.domains import normalize_origin
from licenses.keys import previous_key_valid
from licenses.models import Project

_DECISION = PreparedInsert(Decision)  # its INSERT compiled once per connection (devices.prepared)


def record_decision(
    *, project: Project, endpoint: str, verdict: Verdict, now: datetime, device: Device | None = None, device_uuid: str
) -> Decision:
    return _DECISION.create(
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


def refuse(
    verdict: Verdict, *, project: Project, endpoint: str, now: datetime, device_uuid: str, device: Device | None = None
) -> Refusal:
    """A refused verdict recorded as its decision; the ``Refusal`` for the caller to raise."""
    record_decision(
        project=project, endpoint=endpoint, verdict=verdict, now=now, device=device, device_uuid=device_uuid
    )
    return Refusal.of(verdict)


def project_for_key(license_key: str, *, now: datetime) -> Project:
    """The project of a license key, its current one or, until its grace ends, the one before the
    last rotation (SPEC section 2); else the 101 refusal. One query over two unique indexes."""
    project = project_by_key(license_key)  # compiled once per connection (devices.hot_sql)
    if project is None or (project.license_key != license_key and not previous_key_valid(project, now)):
        raise Refusal(LICENSE_KEY_INVALID, "no project has this license key", rule="license_key_invalid")
    return project


def project_for_request(data, *, endpoint: str, now: datetime) -> Project:
    """Key (101), then the project's session password (102, SPEC section 6): the first checks of
    every device request after its shape and the rate limits. A refused password is recorded."""
    project = project_for_key(data.license_key, now=now)
    verdict = session_password_verdict(project, getattr(data, "session_password", None))
    if verdict is not None:
        raise refuse(verdict, project=project, endpoint=endpoint, now=now, device_uuid=data.device_uuid)
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


def check_validation_fields(
    project: Project, data, *, origin: str | None, endpoint: str, now: datetime, refused: Verdict | None = None
) -> None:
    """The project's validation fields (103, 114), recorded and raised when they refuse."""
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
        raise refuse(verdict, project=project, endpoint=endpoint, now=now, device=device, device_uuid=data.device_uuid)


def never_authorized(*, project: Project, endpoint: str, device_uuid: str, now: datetime) -> Refusal:
    """Usage or release from a device this project never authorized (code 4), recorded."""
    verdict = Verdict(
        None, False, "device_not_authorized", "this project never authorized this device", code=DEVICE_NOT_AUTHORIZED
    )
    return refuse(verdict, project=project, endpoint=endpoint, now=now, device_uuid=device_uuid)
