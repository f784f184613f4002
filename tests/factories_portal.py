"""Factories for the portal tests: devices, decisions, counters, rollups, and a small world with
an owner, a viewer, an outsider and a staff user. Times are relative to a given ``now``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devices.models import Decision, Device
from licenses.models import LicenseItem, Membership, Organization, Project
from tests import factories
from usage.models import ConcurrencyRollup, QuotaCounter, UsageCount, UsageReport, UsageRollup

_seq = itertools.count(1)


def device(item: LicenseItem, *, now: datetime, state: str = Device.ACTIVE, **fields) -> Device:
    n = next(_seq)
    fields.setdefault("device_uuid", f"dev-{n:06d}")
    fields.setdefault("client_type", "server" if item.option == "per_server" else "web")
    fields.setdefault("first_authorized_at", now - timedelta(days=2))
    fields.setdefault("authorized_at", now - timedelta(hours=1))
    fields.setdefault("last_seen_at", now - timedelta(minutes=5))
    fields.setdefault("active_until", now + timedelta(days=30) if state == Device.ACTIVE else now - timedelta(days=1))
    if state != Device.ACTIVE:
        fields.setdefault("ended_at", now - timedelta(hours=2))
    return Device.objects.create(project=item.project, item=item, state=state, **fields)


def decision(dev: Device, *, now: datetime, allowed: bool = True, **fields) -> Decision:
    fields.setdefault("endpoint", Decision.AUTHORIZE)
    fields.setdefault("rule", "seats_kept" if allowed else "seats_exhausted")
    fields.setdefault("code", None if allowed else 120)
    fields.setdefault("created_at", now - timedelta(hours=1))
    return Decision.objects.create(
        project=dev.project, device=dev, device_uuid=dev.device_uuid, item=dev.item, allowed=allowed, **fields
    )


def counter(item: LicenseItem, metric: str, used: int) -> QuotaCounter:
    return QuotaCounter.objects.update_or_create(item=item, metric=metric, defaults={"used": used})[0]


def usage_rollup(item, metric: str, bucket_start: datetime, count: int, granularity: str = UsageRollup.DAY):
    return UsageRollup.objects.create(
        item=item, granularity=granularity, bucket_start=bucket_start, metric=metric, count=count
    )


def day_start(now: datetime, days_ago: int = 0) -> datetime:
    d = (now - timedelta(days=days_ago)).date()
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def report(dev: Device, *, slot_start: datetime, counted: dict[str, int], allowed: bool = True) -> UsageReport:
    r = UsageReport.objects.create(
        device=dev,
        report_id=f"r-{next(_seq)}",
        item=dev.item,
        slot_start=slot_start,
        body_hash="0" * 64,
        counted=counted,
        allowed=allowed,
        response={"allowed": allowed},
        received_at=slot_start + timedelta(minutes=1),
    )
    for metric, n in counted.items():
        UsageCount.objects.create(report=r, item=dev.item, slot_start=slot_start, metric=metric, count=n)
    return r


@dataclass
class World:
    now: datetime
    org: Organization
    other_org: Organization
    project: Project
    other_project: Project
    owner: object
    viewer: object
    outsider: object
    staff: object
    scan: LicenseItem
    pages: LicenseItem
    seats: LicenseItem
    concurrent: LicenseItem
    server: LicenseItem
    domain: LicenseItem
    device: Device
    other_device: Device


def world(now: datetime, *, devices: int = 3, tag: str = "") -> World:
    """Two organizations; the first has a project with an item of every option, ``devices``
    active seat devices, decisions, counters and rollups; the second has a project and a device."""
    org = factories.org(name="Acme Test")
    other_org = factories.org(name="Globex Test")
    lic = factories.license(organization=org, starts_at=now - timedelta(days=60), expires_at=now + timedelta(days=20))
    project = factories.project(organization=org, name=f"web-app{tag}")
    scan = factories.item("per_barcode_scan", license=lic, project=project, quantity=10000)
    pages = factories.item(
        "per_page", product="dwt", license=lic, project=project, quantities={"core": 1000, "ocr": 100}
    )
    seats = factories.item("per_client_device", license=lic, project=project, quantity=10)
    concurrent = factories.item("per_concurrent_device", license=lic, project=project, quantity=5)
    server = factories.item("per_server", license=lic, project=project, quantity=2)
    domain = factories.item("per_domain", product="dwt", license=lic, project=project, domain="acme.example")
    other_project = factories.project(organization=other_org, name=f"globex-app{tag}")
    other_item = factories.item("per_client_device", project=other_project, quantity=5)
    owner = factories.user(f"acme-owner{tag}", organization=org, role=Membership.OWNER, email="owner@acme.example")
    viewer = factories.user(f"acme-viewer{tag}", organization=org, role=Membership.VIEWER)
    outsider = factories.user(f"globex-owner{tag}", organization=other_org, role=Membership.OWNER)
    staff = factories.user(f"staffer{tag}", is_staff=True)
    first = None
    for k in range(devices):
        d = device(seats, now=now, device_name=f"Front desk {k}")
        decision(d, now=now, counts={"active": k, "quantity": 10, "ceiling": 11})
        report(d, slot_start=now - timedelta(hours=3), counted={"barcode_scans": 5 + k})
        first = first or d
    for _ in range(max(1, devices // 3)):
        device(seats, now=now, state=Device.EXPIRED)
    device(server, now=now, device_name="app-server-1")
    counter(scan, "barcode_scans", 8500)
    counter(pages, "pages_core", 200)
    counter(pages, "pages_ocr", 100)
    counter(concurrent, "overuse_spent", 40)
    for days_ago in range(1, 8):
        usage_rollup(scan, "barcode_scans", day_start(now, days_ago), 100)
        usage_rollup(pages, "pages_core", day_start(now, days_ago), 10)
    usage_rollup(scan, "barcode_scans", day_start(now), 40, granularity=UsageRollup.TWO_HOURS)
    usage_rollup(scan, "barcode_scans", day_start(now), 40)
    for k in range(devices):
        ConcurrencyRollup.objects.create(
            item=concurrent,
            slot_start=day_start(now) + timedelta(seconds=180 * k),
            active_devices=4 + k,
            limit=5,
            overuse_devices=max(0, k - 1),
        )
    other_device = device(other_item, now=now, device_name="Globex laptop")
    return World(
        now, org, other_org, project, other_project, owner, viewer, outsider, staff,
        scan, pages, seats, concurrent, server, domain, first, other_device,
    )  # fmt: skip


# force_login with an explicit backend: the first in AUTHENTICATION_BACKENDS is the login
# throttle, which authenticates nobody.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
