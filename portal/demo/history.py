"""Driving the device services with ``now`` in the past, as the device API would have: an
authorization is ``devices.services.authorize``, a usage report ``usage.services.record_usage``,
each from a client address and User-Agent (``devices.context.contact_from``, what the API's
middleware sets) so the records carry them as real requests do."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devices.context import contact_from
from devices.outcomes import Refusal
from devices.services import authorize
from licenses.clock import SLOT, slot_start_of
from licenses.models import Project
from usage.services import record_usage

DAYS = 30  # the month shown; SPEC 6 accepts a slot_start up to 30 days old


@dataclass
class Auth:
    """The fields of an authorization that the service reads (api.schemas.AuthorizeRequest)."""

    license_key: str
    device_uuid: str
    product: str
    client_type: str
    edition: str | None = None
    addon: str | None = None
    origin: str | None = None
    platform: str | None = None
    device_name: str | None = None
    sdk_version: str | None = "demo-1.0"
    session_password: str | None = None
    process_name: str | None = None
    app_id: str | None = None


@dataclass
class Usage:
    """The fields of a usage report that the service reads (api.schemas.UsageRequest)."""

    license_key: str
    device_uuid: str
    report_id: str
    slot_start: datetime
    barcode_scans: int = 0
    sightings: list = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    session_password: str | None = None

    def canonical(self) -> dict[str, Any]:
        return {
            "license_key": self.license_key,
            "device_uuid": self.device_uuid,
            "report_id": self.report_id,
            "slot_start": self.slot_start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "barcode_scans": self.barcode_scans,
            "sightings": [],
            "pages": {k: v for k, v in sorted(self.pages.items()) if v},
        }


@dataclass
class Client:
    """One simulated SDK install: what it sends on every authorization, and where from."""

    uuid: str
    fields: dict[str, Any]
    address: str
    agent: str | None = None


class History:
    """The service calls of one seeding run, with their count and refusals."""

    def __init__(self, now: datetime, rng: random.Random):
        self.now, self.rng = now, rng
        self.calls = self.refusals = 0

    def authorize(self, project: Project, client: Client, at: datetime, **fields: Any) -> bool:
        self.calls += 1
        data = Auth(license_key=project.license_key, device_uuid=client.uuid, **{**client.fields, **fields})
        try:
            with contact_from(client.address, client.agent):
                authorize(data=data, now=at)
            return True
        except Refusal:
            self.refusals += 1
            return False

    def report(
        self, project: Project, client: Client, slot: datetime, *, at: datetime | None = None, **counts: Any
    ) -> bool:
        """A report of ``slot``, received at ``at`` (by default just before the slot ends);
        whether it was allowed. The report id is the slot's, as an SDK numbers its reports."""
        self.calls += 1
        report_id = f"demo-{client.uuid}-{int(slot.timestamp())}" + ("" if at is None else f"-{int(at.timestamp())}")
        data = Usage(project.license_key, client.uuid, report_id, slot, **counts)
        try:
            with contact_from(client.address, client.agent):
                answer = record_usage(data=data, now=at or slot + SLOT - timedelta(seconds=10))
        except Refusal:
            self.refusals += 1
            return False
        self.refusals += int(not answer.get("allowed", True))
        return bool(answer.get("allowed", True))

    def day(self, days_back: int) -> datetime:
        """Midnight UTC of the day ``days_back`` days before today."""
        return (self.now - timedelta(days=days_back)).replace(hour=0, minute=0, second=0, microsecond=0)

    def day_slot(self, days_back: int, hour: int, minute: int = 0) -> datetime:
        return slot_start_of(self.day(days_back) + timedelta(hours=hour, minutes=minute))

    def closed(self, slot: datetime) -> bool:
        """The slot has ended before now (a report of it could have been sent)."""
        return slot + SLOT <= self.now

    def weekday(self, days_back: int) -> bool:
        return self.day(days_back).weekday() < 5
