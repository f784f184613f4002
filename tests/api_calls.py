"""Device API request bodies and calls for tests (re-exported by tests.factories)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.moments import SLOT

# --- device API: request bodies and calls --------------------------------------------------

_travellers: list = []  # the clocks stopped by conftest's ``frozen`` fixture


def move_clock(dt: datetime) -> None:
    """Move the clock stopped by the ``frozen`` fixture to ``dt``."""
    _travellers[-1].move_to(dt)


def _iso(dt: datetime) -> str:
    """RFC 3339 written here, not with licenses.clock, so the API tests check the server's parser."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def auth_body(project, device_uuid: str = "dev-1", **fields) -> dict:
    """An /authorize body for ``project``; a field given as None is left out."""
    body = {"license_key": project.license_key, "device_uuid": device_uuid, "product": "dbr", "client_type": "desktop"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def usage_body(project, device_uuid: str = "dev-1", report_id: str = "r-1", slot: datetime = SLOT, **fields) -> dict:
    body = {
        "license_key": project.license_key,
        "device_uuid": device_uuid,
        "report_id": report_id,
        "slot_start": _iso(slot),
    }
    body.update(fields)
    return body


def post(client, path: str, body, **extra):
    """POST JSON to /api/v1/<path>; returns the response (``.json()`` works on every answer)."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    extra.setdefault("content_type", "application/json")
    return client.post(f"/api/v1/{path}", data=data, **extra)


def authorize(client, project, device_uuid: str = "dev-1", **fields):
    return post(client, "authorize", auth_body(project, device_uuid, **fields))


def report(client, project, device_uuid: str = "dev-1", report_id: str = "r-1", slot: datetime = SLOT, **fields):
    return post(client, "usage", usage_body(project, device_uuid, report_id, slot, **fields))


def release(client, project, device_uuid: str = "dev-1"):
    return post(client, "release", {"license_key": project.license_key, "device_uuid": device_uuid})


def error_of(response) -> dict:
    return response.json()["error"]
