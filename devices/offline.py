"""Offline registration (SPEC section 12): a device that never reaches the server is registered
from its *registration request* (an authorize body without ``license_key`` and
``session_password``, plus ``requested_at``) by a customer owner on the project page or by staff
with ``register_offline_device``. The answer is the local license of section 7 with ``"offline":
true``; the device holds its seat until the token's ``exp``.

Exactly the rules of an authorization as of now: the validation fields, consumption order, seats
with their grace, term; only per_client_device and per_server items serve (else 104)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from django.conf import settings
from django.db import transaction
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from devices.fields import (
    Addon,
    ClientType,
    DeviceUuid,
    OptionalEdition,
    Origin,
    Platform,
    Product,
    SdkVersion,
    Text255,
    ValidationValue,
    field_error,
)
from devices.models import Decision
from devices.outcomes import INVALID_REQUEST, Refusal
from devices.requests import check_validation_fields, project_for_key
from devices.services import grant
from licenses.audit import record_audit
from licenses.clock import parse_rfc3339
from licenses.models import Project

RequestedAt = Annotated[datetime, BeforeValidator(parse_rfc3339)]


class OfflineRequest(BaseModel):
    """A registration request: the fields of an authorize body (same types and limits)."""

    model_config = ConfigDict(extra="ignore", strict=False)

    device_uuid: DeviceUuid
    product: Product
    edition: OptionalEdition = None
    addon: Addon = None
    client_type: ClientType
    origin: Origin = None
    platform: Platform = None
    device_name: Text255 = None
    sdk_version: SdkVersion = None
    app_id: ValidationValue = None
    process_name: ValidationValue = None
    requested_at: RequestedAt = Field(..., description="when the device wrote the request (RFC 3339)")

    @model_validator(mode="after")
    def _origin_for_web(self) -> OfflineRequest:
        if self.client_type == "web" and not self.origin:
            raise field_error("origin", "is required for client_type web")
        return self


def _fields_of(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        ctx = error.get("ctx") or {}
        if error.get("type") == "field_error" and "field" in ctx:
            fields.setdefault(str(ctx["field"]), str(ctx["reason"]))
            continue
        name = ".".join(str(p) for p in error.get("loc", ())) or "body"
        reason = "is required" if error.get("type") == "missing" else str(error.get("msg", "is invalid"))
        fields.setdefault(name, reason.removeprefix("Value error, "))
    return fields


def parse_offline_request(raw: bytes | str) -> OfflineRequest:
    """The registration request in ``raw`` (JSON), or the INVALID_REQUEST refusal (code 1)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > limit:
        raise Refusal(
            INVALID_REQUEST, f"the request is larger than {limit} bytes", fields={"body": f"at most {limit} bytes"}
        )
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refusal(
            INVALID_REQUEST, f"the request is not JSON: {exc}", fields={"body": "is not valid JSON"}
        ) from None
    if not isinstance(body, dict):
        raise Refusal(INVALID_REQUEST, "the request must be a JSON object", fields={"body": "must be a JSON object"})
    try:
        return OfflineRequest.model_validate(body)
    except ValidationError as exc:
        fields = _fields_of(exc)
        name, reason = next(iter(fields.items()))
        raise Refusal(INVALID_REQUEST, f"invalid request: {name} {reason}", fields=fields) from None


def register_offline(project: Project, request: OfflineRequest, *, now: datetime, actor=None) -> str:
    """Register ``request`` on ``project`` as of ``now``: the signed local license (a JWS with
    ``"offline": true``), or a ``Refusal`` with the section 6 code. A refused registration changes
    nothing (SPEC section 12): the whole registration is one transaction, rolled back on refusal."""
    with transaction.atomic():
        check_validation_fields(project, request, origin=request.origin, endpoint=Decision.OFFLINE, now=now)
        body = grant(project, request, origin=request.origin, now=now, offline=True)
        _audit(project, request, body, actor=actor)
    return body["local_license"]


def _audit(project: Project, request: OfflineRequest, body: dict, *, actor) -> None:
    record_audit(
        actor=actor,
        action="device.register_offline",
        obj=project,
        before={},
        after={
            "device_uuid": request.device_uuid,
            "item": body["item"]["id"],
            "active_until": body["active_until"],
            "requested_at": request.requested_at.isoformat(),
        },
    )


def register_offline_for_key(license_key: str, raw: bytes | str, *, now: datetime, actor=None) -> str:
    """The command's path: request shape (1), key (101), then ``register_offline``."""
    request = parse_offline_request(raw)
    project = project_for_key(license_key, now=now)
    return register_offline(project, request, now=now, actor=actor)
