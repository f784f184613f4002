"""python manage.py seed_demo_history: a month of realistic demo history, through the services.

Called by ``seed_demo`` (by name: the licenses app sits below devices and usage). Devices
authorize and report through ``devices.services.authorize`` and ``usage.services.record_usage``
with ``now`` set in the past, exactly as the device API would have recorded them, and the rollup
jobs then run once, so the statistics, concurrency, refusals and devices pages show a month
the moment ``make run`` starts (not after 39 minutes of simulated traffic). Deterministic (a
fixed random seed) and idempotent: it does nothing once the demo projects have devices.

What it makes, in about 1,500 service calls: acme-web's browsers fill the 30 seats + 3 grace and a
34th is refused (with six devices idle for four weeks, to release); acme-warehouse's phones scan
every day; acme-documents' scanners count pages; globex-labels' 12 desktops share 10 concurrent
seats on weekdays (overuse, then the ceiling); globex-backend's third server is refused."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from devices.models import Device
from devices.outcomes import Refusal
from devices.services import authorize
from licenses.clock import SLOT, slot_start_of
from licenses.models import Project
from usage.jobs import expire_idle_devices, rollup_concurrency, rollup_usage
from usage.services import record_usage

DAYS = 30


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


class History:
    def __init__(self, now: datetime, rng: random.Random):
        self.now, self.rng = now, rng
        self.calls = self.refusals = 0
        self._report = 0

    def authorize(self, project: Project, uuid: str, at: datetime, **fields) -> bool:
        self.calls += 1
        try:
            authorize(data=Auth(license_key=project.license_key, device_uuid=uuid, **fields), now=at)
            return True
        except Refusal:
            self.refusals += 1
            return False

    def report(self, project: Project, uuid: str, slot: datetime, **counts) -> None:
        self._report += 1
        self.calls += 1
        data = Usage(project.license_key, uuid, f"demo-{self._report}", slot, **counts)
        try:
            answer = record_usage(data=data, now=slot + SLOT - timedelta(seconds=10))
        except Refusal:
            self.refusals += 1
        else:
            self.refusals += int(not answer.get("allowed", True))

    def day_slot(self, day: int, hour: int, minute: int = 0) -> datetime:
        start = (self.now - timedelta(days=day)).replace(hour=hour, minute=minute, second=0, microsecond=0)
        return slot_start_of(start)


class Command(BaseCommand):
    help = "Add a month of demo devices, usage and refusals through the services (idempotent)."

    def handle(self, *args, **options):
        now = timezone.now()
        projects = {p.name: p for p in Project.objects.filter(name__in=DEMO_PROJECTS)}
        if len(projects) < len(DEMO_PROJECTS):
            self.stdout.write("Demo history: run seed_demo first (the demo projects are missing).")
            return
        if Device.objects.filter(project__in=projects.values()).exists():
            self.stdout.write("Demo history already present: nothing changed.")
            return
        h = History(now, random.Random(216998))
        started = timezone.now()
        # One transaction (each service's own transactions become savepoints): SQLite commits
        # once instead of 2,600 times, which is what makes this take seconds.
        with transaction.atomic():
            web(h, projects["acme-web"])
            warehouse(h, projects["acme-warehouse"])
            documents(h, projects["acme-documents"])
            labels(h, projects["globex-labels"])
            backend(h, projects["globex-backend"])
        expire_idle_devices(now=now)
        rollup_concurrency(now=now)
        rollup_usage(now=now)
        seconds = (timezone.now() - started).total_seconds()
        self.stdout.write(
            f"Demo history: {h.calls:,} device requests over {DAYS} days ({h.refusals:,} refused), "
            f"rolled up, in {seconds:.1f} s."
        )


DEMO_PROJECTS = ("acme-web", "acme-warehouse", "acme-documents", "globex-labels", "globex-backend")


def web(h: History, project: Project) -> None:
    """Browsers of acme-web: 30 seats + 3 grace; six go idle 28 days ago, a 34th is refused."""
    names = ["Front desk", "Reception", "Sales laptop", "Support", "Warehouse PC", "Lab"]
    for k in range(34):
        day = DAYS - k * DAYS // 34
        at = h.day_slot(day, 8 + k % 9, (k * 7) % 60)
        origin = "https://app.acme.example" if k % 3 else "https://portal.acme.example"
        fields = {"product": "dbr", "edition": "javascript", "client_type": "web", "origin": origin}
        fields["device_name"] = f"{names[k % len(names)]} {k + 1}"
        fields["platform"] = ["Chrome 131", "Edge 131", "Firefox 133", "Safari 18"][k % 4]
        if not h.authorize(project, f"web-{k + 1:03d}", at, **fields):
            continue
        if k < 6:
            continue  # idle since: the bulk release has something to free
        for day_back in range(day - 1, -1, -h.rng.randint(2, 5)):  # contact every few days
            h.authorize(project, f"web-{k + 1:03d}", h.day_slot(day_back, 9 + k % 8), **fields)
    # The refused one tries again today.
    h.authorize(project, "web-034", h.day_slot(0, 10), product="dbr", edition="javascript", client_type="web",
                origin="https://app.acme.example", device_name="New intern laptop")  # fmt: skip


def warehouse(h: History, project: Project) -> None:
    """Phones scanning barcodes every day, more on weekdays."""
    for k in range(6):
        uuid = f"scanner-{k + 1:02d}"
        if not h.authorize(project, uuid, h.day_slot(DAYS, 7, 3 * k), product="dbr", edition="mobile",
                           client_type="mobile", platform="Android 14", device_name=f"Handheld {k + 1}"):  # fmt: skip
            continue
        for day in range(DAYS - 1, -1, -1):
            weekday = (h.now - timedelta(days=day)).weekday() < 5
            for hour in h.rng.sample(range(7, 19), 2 if weekday else 1):
                slot = h.day_slot(day, hour, 3 * h.rng.randint(0, 19))
                if slot + SLOT > h.now:
                    continue
                h.report(project, uuid, slot, barcode_scans=h.rng.randint(20, 120) if weekday else h.rng.randint(0, 30))


def documents(h: History, project: Project) -> None:
    """Document scanners counting pages (core) and a little OCR."""
    for k in range(4):
        uuid = f"twain-pc-{k + 1}"
        if not h.authorize(project, uuid, h.day_slot(DAYS, 8, 3 * k), product="dwt", client_type="desktop",
                           platform="Windows 11", device_name=f"Scanning station {k + 1}"):  # fmt: skip
            continue
        for day in range(DAYS - 1, -1, -1):
            for hour in h.rng.sample(range(8, 18), 2):
                slot = h.day_slot(day, hour, 3 * h.rng.randint(0, 19))
                if slot + SLOT <= h.now:
                    h.report(project, uuid, slot, pages={"core": h.rng.randint(30, 400), "ocr": h.rng.randint(0, 15)})


def labels(h: History, project: Project) -> None:
    """12 desktops sharing 10 concurrent seats on weekdays: busy slots go into overuse (11 with
    the 10 % allowance) and the 12th device is refused there."""
    uuids = [f"label-desk-{k + 1:02d}" for k in range(12)]
    for k, uuid in enumerate(uuids):
        h.authorize(project, uuid, h.day_slot(DAYS, 8, 3 * k), product="dlr", edition="desktop", client_type="desktop",
                    platform="Windows 11", device_name=f"Label printer desk {k + 1}")  # fmt: skip
    for day in range(DAYS - 1, -1, -1):
        if (h.now - timedelta(days=day)).weekday() >= 5:
            continue
        for hour in (11, 15):
            slot = h.day_slot(day, hour, 3 * h.rng.randint(0, 19))
            if slot + SLOT > h.now:
                continue
            busy = 12 if hour == 11 else h.rng.randint(5, 9)
            for uuid in uuids[:busy]:
                h.authorize(project, uuid, slot + timedelta(seconds=5), product="dlr", edition="desktop",
                            client_type="desktop")  # fmt: skip
                h.report(project, uuid, slot, barcode_scans=h.rng.randint(1, 20))


def backend(h: History, project: Project) -> None:
    """Two servers hold the two server seats; a third is refused whenever it starts."""
    start = h.now - timedelta(minutes=5)
    for k in range(2):
        h.authorize(project, f"api-server-{k + 1}", start + timedelta(seconds=k), product="dbr", edition="server",
                    client_type="server", platform="Linux x86_64", device_name=f"api-server-{k + 1}")  # fmt: skip
    for k in range(7):
        h.authorize(project, "batch-server", start + timedelta(seconds=20 * (k + 1)), product="dbr",
                    edition="server", client_type="server", device_name="batch-server")  # fmt: skip
