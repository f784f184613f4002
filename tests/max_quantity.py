"""One organization whose every item is at the largest quantity the importer accepts (SPEC 5:
2,147,483,647, PostgreSQL's int4 maximum), with counters, seats, rollups and decisions near and
past 2^31: the data of the overflow tests (tests/test_ops_overflow_*.py).

The license is imported through ``licenses.issuing.import_license`` (the importer's own bounds
accept it); the state that usage would build is then written directly, at sizes no test could
reach by sending reports: a scan counter at its grace limit (quantity x 1.05 > 2^31), seat
counters at the ceiling (quantity x 1.1), an overuse budget of 1000 x quantity, rollups and
device days of billions, decisions quoting those counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps

from devices.models import OVERUSE_SPENT, Device, SeatCounter
from licenses.events import emit
from licenses.issuing import import_license
from licenses.members import invite_member
from licenses.models import AlertRecipient, LicenseItem, Membership, Organization, Project
from tests import factories
from usage.models import ConcurrencyRollup, DeviceUsageDay, ReplayRun

MAX_QUANTITY = 2_147_483_647
INT4_OVERFLOW = 2**31  # the first value PostgreSQL's integer cannot hold
PAGE_MODULES = ("core", "webcam", "pdfr", "ocr")
BILLIONS = 3_000_000_000  # a rollup or a device's day past 2^31


def license_file(license_id: str = "L-MAX-0001") -> dict:
    """Every option at its largest quantity, and every bounded field at its largest value."""
    q = MAX_QUANTITY
    return {
        "license_id": license_id,
        "organization": {"id": "777001", "name": "Max Corp"},
        "starts_at": factories._iso(factories.NOW - timedelta(days=60)),
        "expires_at": factories._iso(factories.NOW + timedelta(days=300)),
        "project": "max-project",
        "items": [
            {"product": "dbr", "option": "per_barcode_scan", "quantity": q, "dedup_interval_ms": q},
            {"product": "dwt", "addon": "barcode_reader", "option": "per_barcode_scan", "quantity": q},
            {"product": "dwt", "option": "per_page", "quantities": dict.fromkeys(PAGE_MODULES, q)},
            {"product": "dbr", "edition": "javascript", "option": "per_client_device", "quantity": q},
            {"product": "dlr", "option": "per_concurrent_device", "quantity": q, "overuse_percent": 1000},
            {"product": "dlr", "option": "per_concurrent_device", "quantity": q, "overuse_budget": q},
            {"product": "dbr", "edition": "server", "option": "per_server", "quantity": q, "heartbeat_timeout_s": q},
            {"product": "dwt", "option": "per_domain", "domain": "*.example.com"},
        ],
    }


@dataclass
class MaxWorld:
    now: datetime
    org: Organization
    project: Project
    owner: object
    viewer: object
    staff: object
    scan: LicenseItem  # used at its grace limit: refused
    scan_near: LicenseItem  # used just under its quantity, a slow daily rate
    pages: LicenseItem  # core near, webcam at its grace limit, pdfr at 1 a day, ocr past 2^31
    seats: LicenseItem  # seat counter one under the ceiling (past 2^31)
    concurrent: LicenseItem  # overuse 1000 %, the default budget 1000 x quantity
    concurrent_capped: LicenseItem  # budget = quantity, all spent
    server: LicenseItem  # servers one under the quantity
    domain: LicenseItem
    devices: dict[str, Device] = field(default_factory=dict)
    token: str = ""  # an organization write token of the admin API
    staff_token: str = ""
    invitation_token: str = ""


def model(name: str):
    """A model class by name, wherever its app is (tokens and webhooks move between apps)."""
    return next(m for m in apps.get_models() if m.__name__ == name)


def _device(item: LicenseItem, name: str, now: datetime, **fields) -> Device:
    fields.setdefault("client_type", "server" if item.option == "per_server" else "desktop")
    return factories.DeviceFactory(item=item, now=now, device_uuid=f"max-{name}", device_name=name, **fields)


def max_world(now: datetime) -> MaxWorld:
    """Import the license at ``now`` and build its usage (call with the clock at ``now``)."""
    out = import_license(license_file(), now=now)
    items = [LicenseItem.objects.select_related("license", "project").get(pk=int(i["id"])) for i in out["items"]]
    scan, scan_near, pages, seats, concurrent, capped, server, domain = items
    project, org = scan.project, scan.project.organization
    owner = factories.UserFactory(username="max-owner", organization=org, email="owner@max.example")
    viewer = factories.UserFactory(username="max-viewer", organization=org, role=Membership.VIEWER)
    staff = factories.UserFactory(username="max-staff", is_staff=True, is_superuser=True)
    w = MaxWorld(
        now, org, project, owner, viewer, staff, scan, scan_near, pages, seats, concurrent, capped, server, domain
    )

    # Quota counters: at the grace limit (refused), near the quantity, past 2^31.
    counter = factories.QuotaCounterFactory
    counter(item=scan, metric="barcode_scans", used=scan.quota_refused_from(MAX_QUANTITY))
    counter(item=scan_near, metric="barcode_scans", used=MAX_QUANTITY - 1)
    counter(item=pages, metric="pages_core", used=MAX_QUANTITY - 1)
    counter(item=pages, metric="pages_webcam", used=pages.quota_refused_from(MAX_QUANTITY))
    counter(item=pages, metric="pages_pdfr", used=7)
    counter(item=pages, metric="pages_ocr", used=INT4_OVERFLOW + 5)
    counter(item=concurrent, metric=OVERUSE_SPENT, used=INT4_OVERFLOW + 7)
    counter(item=capped, metric=OVERUSE_SPENT, used=MAX_QUANTITY)

    # Devices of every item and state; the seat counters say the items are nearly full.
    d = w.devices
    for k in range(3):
        d[f"seat{k}"] = _device(seats, f"seat{k}", now, client_type="web", origin="https://app.example.com")
    d["seat_expired"] = _device(seats, "seat-expired", now, client_type="web", state=Device.EXPIRED)
    d["seat_released"] = _device(seats, "seat-released", now, client_type="web", state=Device.RELEASED)
    d["seat_offline"] = _device(seats, "seat-offline", now, offline=True)
    d["server"] = _device(server, "server", now)
    d["scan"] = _device(scan, "scan", now)
    d["scan_near"] = _device(scan_near, "scan-near", now)
    d["pages"] = _device(pages, "pages", now)
    d["concurrent0"] = _device(concurrent, "concurrent0", now)
    d["concurrent1"] = _device(concurrent, "concurrent1", now)
    d["capped"] = _device(capped, "capped", now)
    d["domain"] = _device(domain, "domain", now, client_type="web", origin="https://app.example.com")
    SeatCounter.objects.update_or_create(item=seats, defaults={"active": seats.seat_ceiling - 1})
    SeatCounter.objects.update_or_create(item=server, defaults={"active": MAX_QUANTITY - 1})

    # Reports of the largest count a report may carry (SPEC 6: 1,000,000), so the jobs roll them.
    slot = factories.SLOT - timedelta(minutes=30)
    for name, metric in (("scan", "barcode_scans"), ("scan_near", "barcode_scans"), ("pages", "pages_core")):
        factories.UsageReportFactory(device=d[name], slot_start=slot, counted={metric: 1_000_000})
    for name in ("concurrent0", "concurrent1", "capped"):
        factories.UsageReportFactory(device=d[name], slot_start=slot, counted={"barcode_scans": 1_000_000})
    DeviceUsageDay.objects.filter(device=d["scan"]).update(count=BILLIONS)

    # Rollups: billions a day; pdfr at 1 page a day (a run-out projected millions of years away).
    for days_ago in range(0, 8):
        day = factories.day_start(now, days_ago)
        for item, metric, n in (
            (scan, "barcode_scans", BILLIONS),
            (scan_near, "barcode_scans", 1),
            (pages, "pages_core", BILLIONS),
            (pages, "pages_pdfr", 1),
            (pages, "pages_ocr", MAX_QUANTITY),
        ):
            factories.UsageRollupFactory(item=item, metric=metric, bucket_start=day, count=n)
    for item, metric in ((scan, "barcode_scans"), (pages, "pages_webcam")):
        factories.UsageRollupFactory(
            item=item, metric=metric, bucket_start=factories.day_start(now), count=BILLIONS, granularity="2h"
        )
    for k, active in enumerate((MAX_QUANTITY, INT4_OVERFLOW + 1000, concurrent.concurrency_ceiling)):
        ConcurrencyRollup.objects.create(
            item=concurrent,
            slot_start=factories.day_start(now) + timedelta(seconds=180 * k),
            active_devices=active,
            limit=MAX_QUANTITY,
            overuse_devices=max(0, active - MAX_QUANTITY),
        )
    ConcurrencyRollup.objects.create(
        item=capped,
        slot_start=factories.day_start(now),
        active_devices=MAX_QUANTITY,
        limit=MAX_QUANTITY,
        overuse_devices=0,
    )

    # Decisions quoting the counts at those sizes: refusals and seats taken at the ceiling.
    decision = factories.DecisionFactory
    ceiling = seats.seat_ceiling
    decision(
        device=d["seat0"],
        now=now,
        rule="seat_taken",
        counts={"active": ceiling - 2, "quantity": MAX_QUANTITY, "ceiling": ceiling},
    )
    decision(
        device=d["seat1"],
        now=now,
        allowed=False,
        rule="seats_exhausted",
        code=120,
        message=f"{ceiling} of {MAX_QUANTITY} seats are taken",
        counts={"active": ceiling, "quantity": MAX_QUANTITY, "ceiling": ceiling},
    )
    decision(
        device=d["server"],
        now=now,
        allowed=False,
        rule="servers_exhausted",
        code=120,
        counts={"active": MAX_QUANTITY, "quantity": MAX_QUANTITY, "ceiling": MAX_QUANTITY},
    )
    decision(
        device=d["scan"],
        now=now,
        allowed=False,
        rule="quota_exhausted",
        code=120,
        counts={"used": scan.quota_refused_from(MAX_QUANTITY), "quantity": MAX_QUANTITY, "grace": 5},
    )
    used_pages = {
        "core": MAX_QUANTITY - 1,
        "webcam": pages.quota_refused_from(MAX_QUANTITY),
        "pdfr": 0,
        "ocr": INT4_OVERFLOW + 5,
    }
    decision(
        device=d["pages"],
        now=now,
        allowed=False,
        rule="pages_exhausted",
        code=120,
        endpoint="usage",
        counts={"used": used_pages, "quantity": dict.fromkeys(PAGE_MODULES, MAX_QUANTITY), "grace": 5},
    )
    overuse = {
        "quantity": MAX_QUANTITY,
        "ceiling": capped.concurrency_ceiling,
        "budget": MAX_QUANTITY,
        "spent": MAX_QUANTITY,
    }
    decision(
        device=d["capped"],
        now=now,
        allowed=False,
        rule="overuse_budget_spent",
        code=120,
        endpoint="usage",
        counts={**overuse, "active": MAX_QUANTITY},
    )
    decision(
        device=d["concurrent0"],
        now=now,
        allowed=False,
        rule="slot_ceiling_reached",
        code=120,
        endpoint="usage",
        counts={
            "quantity": MAX_QUANTITY,
            "ceiling": concurrent.concurrency_ceiling,
            "active": concurrent.concurrency_ceiling,
            "budget": concurrent.effective_overuse_budget,
            "spent": INT4_OVERFLOW + 7,
        },
    )

    # What the integration, team and insight pages list.
    AlertRecipient.objects.create(organization=org, email="ops@max.example")
    _, w.invitation_token = invite_member(
        organization=org, email="later@max.example", role="viewer", actor=owner, now=now
    )
    _, w.token = model("ApiToken").create_token(scope="write", organization=org, now=now, name="max")
    _, w.staff_token = model("ApiToken").create_token(scope="read", now=now, name="max-staff")
    endpoint = model("WebhookEndpoint").objects.create(
        url="https://hooks.example.com/max", organization=org, created_at=now
    )
    event = emit(
        "usage.threshold_crossed",
        {"item": str(scan.pk), "used": scan.quota_refused_from(MAX_QUANTITY), "quantity": MAX_QUANTITY},
        organization=org,
        now=now,
    )
    model("WebhookDelivery").objects.create(endpoint=endpoint, event=event, attempt_at=now, created_at=now)
    ReplayRun.objects.create(
        item=seats, changes={"quantity": MAX_QUANTITY}, start=now - timedelta(days=40), end=now, created_at=now
    )
    return w
