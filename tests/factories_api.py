"""Helpers for the device API tests (tests/test_api_*.py): request bodies and calls."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import time_machine

from tests import factories
from usage.slots import slot_start_of

NOW = factories.NOW  # 2026-11-27T17:24:00Z, on a slot boundary
SLOT = slot_start_of(NOW)


@pytest.fixture
def no_rate_limits(settings):
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "0"


_travellers: list = []


@pytest.fixture
def frozen():
    """The clock stopped at factories.NOW; ``move_clock(dt)`` moves it (use with usefixtures)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        _travellers.append(traveller)
        try:
            yield traveller
        finally:
            _travellers.remove(traveller)


def move_clock(dt: datetime) -> None:
    _travellers[-1].move_to(dt)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def auth_body(project, device_uuid: str = "dev-1", **fields) -> dict:
    body = {"license_key": project.license_key, "device_uuid": device_uuid, "product": "dbr", "client_type": "desktop"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def usage_body(project, device_uuid: str = "dev-1", report_id: str = "r-1", slot: datetime = SLOT, **fields) -> dict:
    body = {
        "license_key": project.license_key,
        "device_uuid": device_uuid,
        "report_id": report_id,
        "slot_start": iso(slot),
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


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
