"""The exports, every job, the device API and the admin API at the largest quantity the importer
accepts (tests/max_quantity.py): counters, seats and budgets near and past 2^31 neither overflow
(PostgreSQL raises "integer out of range") nor lose a count, and every figure shown is exact:
``remaining`` is max(0, quantity - used) (SPEC 4, 6)."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from devices.models import OVERUSE_SPENT, Device, QuotaCounter, SeatCounter
from licenses.models import LicenseItem, effective_overuse_budget_expression
from tests import factories
from tests.factories import MODEL_BACKEND
from tests.max_quantity import BILLIONS, INT4_OVERFLOW, MAX_QUANTITY, max_world, model
from tests.quota import quota_used
from tests.test_ops_overflow_pages import url_names
from usage.jobs import JOBS
from usage.models import AlertSent, ConcurrencyRollup, DeviceUsageDay, UsageRollup

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]
GRACE_LIMIT = 2_254_857_830  # ceil(2,147,483,647 x 1.05): the scan quota refuses from here
SEAT_CEILING = 2_362_232_011  # floor(2,147,483,647 x 1.1)


@pytest.fixture
def mw(now, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return max_world(now)


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def set_used(item, used: int, metric: str = "barcode_scans") -> None:
    QuotaCounter.objects.filter(item=item, metric=metric).update(used=used)


# --- exports ---------------------------------------------------------------------------------


def test_the_exports_carry_the_counts_past_2_31(mw):
    key = mw.project.license_key
    client = Client()
    client.force_login(mw.owner, backend=MODEL_BACKEND)
    for what in ("usage", "concurrency", "devices"):
        out = io.StringIO()
        call_command("export_usage", "--license-key", key, "--what", what, stdout=out)
        served = client.get(reverse("portal:export", args=[mw.project.pk, what]))
        assert served.status_code == 200
        assert b"".join(served.streaming_content).decode() == out.getvalue(), what  # the same file
        listed = rows(out.getvalue())
        assert listed, what
        if what == "usage":
            assert {"item": str(mw.scan.pk), "metric": "barcode_scans", "count": str(BILLIONS)}.items() <= listed[
                -1
            ].items() or any(r["item"] == str(mw.scan.pk) and r["count"] == str(BILLIONS) for r in listed)
        elif what == "concurrency":
            peak = next(r for r in listed if r["active_devices"] == str(INT4_OVERFLOW + 1000))
            assert peak["limit"] == str(MAX_QUANTITY) and peak["overuse_devices"] == "1001"
            ceiling = str(mw.concurrent.concurrency_ceiling)  # 23,622,320,117 at 1000 % overuse
            assert any(r["active_devices"] == ceiling for r in listed)
        else:
            assert {r["device_uuid"] for r in listed} >= {d.device_uuid for d in mw.devices.values()}
    bounded = io.StringIO()
    today = mw.now.date()
    call_command("export_usage", "--license-key", key, "--what", "usage", "--from", str(today), stdout=bounded)
    assert {r["count"] for r in rows(bounded.getvalue())} >= {str(BILLIONS)}


# --- jobs ------------------------------------------------------------------------------------


def run_job(name: str, now=None) -> dict:
    out = io.StringIO()
    args = [name] + (["--now", now.strftime("%Y-%m-%dT%H:%M:%SZ")] if now else [])
    call_command("run_job", *args, stdout=out)  # a failure raises: not exit 0
    return json.loads(out.getvalue())


def test_every_job_runs_at_the_largest_quantity(mw):
    run_out = mw.devices["seat2"]
    Device.objects.filter(pk=run_out.pk).update(active_until=mw.now - timedelta(minutes=1))
    old = factories.UsageReportFactory(
        device=mw.devices["scan"], slot_start=mw.now - timedelta(days=500), counted={"barcode_scans": 1_000_000}
    )
    summaries = {name: run_job(name) for name in JOBS}
    assert set(summaries) == set(JOBS)
    assert summaries["expire_idle_devices"]["expired"] == 1
    assert SeatCounter.objects.get(item=mw.seats).active == SEAT_CEILING - 2  # one freed, past 2^31
    assert summaries["rollup_concurrency"]["slots_rolled"] >= 1
    assert summaries["rollup_usage"]["buckets_rolled"] >= 1
    assert summaries["purge_old_data"]["usagereport"] == 1 and not type(old).objects.filter(pk=old.pk).exists()
    # Alerts: every threshold of the items past them, with the exact figures.
    sent = set(AlertSent.objects.values_list("item_id", "kind", "threshold"))
    for item, kind in ((mw.scan, "barcode_scans"), (mw.pages, "pages_webcam"), (mw.pages, "pages_ocr")):
        assert {(item.pk, kind, t) for t in (60, 80, 100)} <= sent
    assert {(mw.concurrent_capped.pk, "overuse", t) for t in (60, 80, 100)} <= sent
    assert (mw.concurrent.pk, "overuse", 60) not in sent  # 2^31 of 2.1 x 10^12: 0.1 %
    assert summaries["send_usage_alerts"]["alerts"] == len(sent)
    crossed = model("OutboxEvent").objects.filter(type="usage.threshold_crossed", data__item=str(mw.scan.pk))
    assert {(e.data["used"], e.data["quantity"]) for e in crossed if "threshold" in e.data} == {
        (GRACE_LIMIT, MAX_QUANTITY)
    }
    # Rolled from the reports: the slot's devices and the 1,000,000-scan reports.
    assert ConcurrencyRollup.objects.filter(item=mw.concurrent, active_devices=2).exists()
    day = UsageRollup.objects.get(item=mw.scan, granularity="day", bucket_start=factories.day_start(mw.now))
    assert day.count == BILLIONS + 1_000_000  # recomputed from its 2-hour buckets, in 64 bits
    again = {name: run_job(name) for name in JOBS}  # twice changes nothing more
    assert again["send_usage_alerts"]["alerts"] == 0 and again["expire_idle_devices"]["expired"] == 0
    future = run_job("rollup_usage", now=mw.now + timedelta(days=1))
    assert future["job"] == "rollup_usage"


def test_the_commands_at_the_largest_quantity(mw, tmp_path):
    start, end = str(mw.now.date() - timedelta(days=30)), str(mw.now.date() + timedelta(days=1))
    key = mw.project.license_key
    for item, change in (
        (mw.scan, "quantity=2147483647"),
        (mw.pages, "quantities.core=2147483647"),
        (mw.seats, "device_grace_percent=1000"),
        (mw.server, "heartbeat_timeout_s=2147483647"),
        (mw.concurrent, "overuse_budget=2147483647"),
    ):
        out = io.StringIO()
        args = ["--license-key", key, "--item", str(item.pk), "--set", change, "--from", start, "--to", end]
        recommend = ["--recommend"] if item.option != "per_barcode_scan" and item.option != "per_page" else []
        call_command("what_if", *args, *recommend, stdout=out)
        assert json.loads(out.getvalue()), item.option
    request = tmp_path / "offline.json"
    request.write_text(
        json.dumps({"device_uuid": "off-cli", "product": "dbr", "edition": "javascript", "client_type": "desktop",
                    "requested_at": "2026-11-27T17:20:00Z"})
    )  # fmt: skip
    token = io.StringIO()
    call_command("register_offline_device", "--license-key", key, str(request), stdout=token)
    assert claims({"local_license": token.getvalue().strip()})["remaining"] == {"seats": 0}
    assert SeatCounter.objects.get(item=mw.seats).active == SEAT_CEILING
    wrong = io.StringIO()
    with pytest.raises(CommandError, match="2 seat counter"):  # the fixture's counters are not its rows
        call_command("repair_seat_counts", "--check", stdout=wrong)
    assert {"item": mw.seats.pk, "counter": SEAT_CEILING, "active_devices": 5} in json.loads(wrong.getvalue())["wrong"]
    call_command("repair_seat_counts", stdout=io.StringIO())
    assert SeatCounter.objects.get(item=mw.seats).active == 5


# --- the device API --------------------------------------------------------------------------


def claims(body: dict) -> dict:
    payload = body["local_license"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_seats_and_servers_answer_remaining_at_the_ceiling(client, mw):
    # The scan item serves every client type and comes first: out of the way, seats decide.
    LicenseItem.objects.filter(pk=mw.scan.pk).update(project=factories.ProjectFactory(organization=mw.org))
    seats = factories.authorize(client, mw.project, "new-seat", edition="javascript", client_type="web",
                                origin="https://app.example.com")  # fmt: skip
    assert seats.status_code == 200, seats.json()
    assert seats.json()["remaining"] == {"seats": 0}  # 2,362,232,011 held of 2,147,483,647
    assert claims(seats.json())["remaining"] == {"seats": 0}
    assert SeatCounter.objects.get(item=mw.seats).active == SEAT_CEILING
    refused = factories.authorize(client, mw.project, "one-more", edition="javascript", client_type="web",
                                  origin="https://app.example.com")  # fmt: skip
    assert refused.status_code == 403
    assert factories.error_of(refused) == {
        "code": 120,
        "name": "USAGE_EXCEEDED",
        "message": f"{SEAT_CEILING} of {MAX_QUANTITY} seats are taken (grace {SEAT_CEILING - MAX_QUANTITY})",
    }
    SeatCounter.objects.filter(item=mw.seats).update(active=MAX_QUANTITY - 10)
    nine = factories.authorize(client, mw.project, "one-more", edition="javascript", client_type="web",
                               origin="https://app.example.com")  # fmt: skip
    assert nine.json()["remaining"] == {"seats": 9}
    server = factories.authorize(client, mw.project, "new-server", edition="server", client_type="server")
    assert server.status_code == 200 and server.json()["remaining"] == {"servers": 0}
    full = factories.authorize(client, mw.project, "server-2", edition="server", client_type="server")
    assert (
        full.status_code == 403
        and factories.error_of(full)["message"] == f"{MAX_QUANTITY} of {MAX_QUANTITY} servers are active"
    )


def scan_report(client, mw, report_id: str, n: int = 1_000_000, device: str = "max-scan"):
    return factories.report(client, mw.project, device, report_id, factories.SLOT, barcode_scans=n)


@pytest.mark.parametrize(
    "used, remaining_after, allowed",
    [
        (MAX_QUANTITY - 2_000_000, 1_000_000, True),  # under the quantity: exact
        (INT4_OVERFLOW - 500_000, 0, True),  # crosses 2^31
        (INT4_OVERFLOW + 100_000_000, 0, True),  # past 2^31, under the grace
        (GRACE_LIMIT - 1_000_000, 0, False),  # reaches the grace limit: refused from this report
    ],
)
def test_a_report_of_a_million_scans_near_and_past_2_31(client, mw, used, remaining_after, allowed):
    set_used(mw.scan, used)
    DeviceUsageDay.objects.filter(device=mw.devices["scan"]).delete()
    if used < GRACE_LIMIT:
        authorized = factories.authorize(client, mw.project, "max-scan")
        assert authorized.status_code == 200
        assert authorized.json()["remaining"] == {"barcode_scans": max(0, MAX_QUANTITY - used)}
    response = scan_report(client, mw, "r-million")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["allowed"] is allowed and body["counted"]["barcode_scans"] == 1_000_000
    assert quota_used(mw.scan, "barcode_scans") == used + 1_000_000
    if allowed:
        assert body["remaining"] == {"barcode_scans": remaining_after}
        assert claims(body)["remaining"] == {"barcode_scans": remaining_after}
    else:
        assert body["error"]["code"] == 120 and "local_license" not in body
        assert factories.error_of(factories.authorize(client, mw.project, "max-scan"))["code"] == 120
    assert DeviceUsageDay.objects.get(device=mw.devices["scan"]).count == 1_000_000
    assert scan_report(client, mw, "r-million").json()["status"] == "duplicate"


def test_sightings_under_the_largest_dedup_interval_count_once(client, mw):
    set_used(mw.scan, MAX_QUANTITY - 10)
    t0 = 1_764_264_240_000  # the interval is 2,147,483,647 ms (24.8 days): a day apart is a repeat
    sightings = [{"ts_ms": t0 + k * 86_400_000, "frame": k, "format": "QR_CODE", "text": "MAX"} for k in range(3)]
    body = factories.report(client, mw.project, "max-scan", "r-seen", factories.SLOT, sightings=sightings).json()
    assert body["counted"]["barcode_scans"] == 1 and body["remaining"] == {"barcode_scans": 9}


def test_a_device_day_and_the_page_modules_past_2_31(client, mw):
    # The scan device's day already holds 3,000,000,000: the report's upsert adds in 64 bits.
    assert scan_report(client, mw, "r-day").status_code == 200
    assert (
        DeviceUsageDay.objects.get(device=mw.devices["scan"], day=factories.SLOT.date()).count == BILLIONS + 1_000_000
    )
    set_used(mw.pages, MAX_QUANTITY - 1_500_000, "pages_core")
    response = factories.report(client, mw.project, "max-pages", "r-pages", factories.SLOT, pages={"core": 1_000_000})
    body = response.json()
    assert body["allowed"] is True, body
    assert body["remaining"] == {"pages": {"core": 500_000, "webcam": 0, "pdfr": MAX_QUANTITY - 7, "ocr": 0}}
    refused = factories.report(client, mw.project, "max-pages", "r-webcam", factories.SLOT, pages={"webcam": 1})
    assert refused.json()["allowed"] is False  # webcam is at its grace limit


def test_concurrent_and_domain_items_at_the_largest_budget(client, mw):
    for uuid in ("max-concurrent0", "max-capped"):
        ok = factories.authorize(client, mw.project, uuid, product="dlr")
        assert ok.status_code == 200 and ok.json()["remaining"] == {}, ok.json()
        used = factories.report(client, mw.project, uuid, f"r-{uuid}", factories.SLOT, barcode_scans=1)
        assert used.json()["allowed"] is True, used.json()
    assert quota_used(mw.concurrent, OVERUSE_SPENT) == INT4_OVERFLOW + 7
    web = factories.authorize(client, mw.project, "max-domain", product="dwt", client_type="web",
                              origin="https://app.example.com")  # fmt: skip
    assert web.status_code == 200 and web.json()["remaining"] == {}
    budgets = dict(LicenseItem.objects.annotate(b=effective_overuse_budget_expression()).values_list("pk", "b"))
    assert budgets[mw.concurrent.pk] == 1000 * MAX_QUANTITY and budgets[mw.concurrent_capped.pk] == MAX_QUANTITY


# --- the admin API ---------------------------------------------------------------------------

# Routes that change something: tested by the admin API's own tests, not visited here.
ADMIN_API_WRITES = {
    "create_license", "suspend_license", "resume_license", "revoke_license", "put_order", "post_rotate_key",
    "put_protection", "release_device", "post_webhook", "patch_webhook", "delete_webhook", "post_redeliver",
}  # fmt: skip


def admin_api_reads(mw) -> dict[str, list[str]]:
    p = mw.project.pk
    endpoint = model("WebhookEndpoint").objects.get(organization=mw.org).pk
    lic = mw.scan.license.license_id
    return {
        "list_licenses": ["/licenses", f"/licenses?organization={mw.org.pk}&status=active"],
        "get_license": [f"/licenses/{lic}"],
        "list_organizations": ["/organizations"],
        "get_organization": [f"/organizations/{mw.org.pk}"],
        "audit_log": ["/audit-log"],
        "get_project": [f"/projects/{p}"],
        "list_devices": [f"/projects/{p}/devices"]
        + [f"/projects/{p}/devices?state={s}" for s in ("active", "offline")],
        "get_usage": [f"/projects/{p}/usage?what=usage", f"/projects/{p}/usage?what=concurrency"],
        "list_decisions": [f"/projects/{p}/decisions", f"/projects/{p}/decisions?allowed=false&code=120"],
        "list_webhooks": ["/webhooks"],
        "get_webhook": [f"/webhooks/{endpoint}"],
        "list_deliveries": [f"/webhooks/{endpoint}/deliveries"],
        "openapi-json": ["/openapi.json"],
        "openapi-view": ["/docs"],
        "api-root": ["/"],
    }


def test_every_admin_api_read_at_the_largest_quantity(client, mw):
    reads = admin_api_reads(mw)
    assert set(url_names("admin-api")) == set(reads) | ADMIN_API_WRITES, "a new admin API route needs a visit here"
    for name, paths in reads.items():
        for path in paths:
            secret = mw.staff_token if name in ("audit_log", "list_organizations") else mw.token
            response = client.get(f"/api/admin/v1{path}", HTTP_AUTHORIZATION=f"Bearer {secret}")
            assert response.status_code in (200, 404) if name == "api-root" else response.status_code == 200, path
    project = client.get(f"/api/admin/v1/projects/{mw.project.pk}", HTTP_AUTHORIZATION=f"Bearer {mw.token}").json()
    by_id = {i["id"]: i for i in project["items"]}
    scan = by_id[str(mw.scan.pk)]
    assert (scan["quantity"], scan["used"], scan["remaining"]) == (MAX_QUANTITY, GRACE_LIMIT, {"barcode_scans": 0})
    pages = by_id[str(mw.pages.pk)]
    assert pages["used"]["ocr"] == INT4_OVERFLOW + 5 and pages["remaining"]["pages"]["pdfr"] == MAX_QUANTITY - 7
    seats = by_id[str(mw.seats.pk)]
    assert seats["active_seats"] == SEAT_CEILING - 1 and seats["remaining"] == {"seats": 0}
    assert by_id[str(mw.concurrent.pk)]["used"] == {"overuse_spent": INT4_OVERFLOW + 7}
    usage = client.get(
        f"/api/admin/v1/projects/{mw.project.pk}/usage?what=concurrency", HTTP_AUTHORIZATION=f"Bearer {mw.token}"
    ).json()["data"]
    assert any(r["active_devices"] == INT4_OVERFLOW + 1000 and r["limit"] == MAX_QUANTITY for r in usage)
