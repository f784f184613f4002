"""Every event type of SPEC section 14, emitted from the place where the change happens, in its
transaction: the issuing services, the reminders, the alerts job (the same crossings as the
emails), the expiry job (one per item and run), release, key rotation, and the device API's
refusals coalesced per project, item and rule per 10 minutes (none on the hot path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from devices.models import Decision, Device
from licenses.events import EVENT_TYPES, emit
from licenses.keys import rotate_key
from licenses.models import AlertRecipient, License, OutboxEvent
from licenses.services import LicenseFileError, add_quota, import_license, renew_license, set_license_status
from tests import factories
from usage import jobs
from usage.models import AlertSent
from usage.webhooks.dispatch import REFUSED_WINDOW_S, flush_refused_events
from usage.webhooks.endpoints import create_endpoint

pytestmark = pytest.mark.django_db


def events(kind: str) -> list[dict]:
    return list(OutboxEvent.objects.filter(type=kind).order_by("id").values_list("data", flat=True))


def test_issuing_emits_license_events_with_the_license_as_the_admin_api_shows_it(now):
    out = import_license(factories.license_file(), actor="t", now=now)
    (created,) = events("license.created")
    assert created["license_id"] == out["license_id"] and created["items"] == out["items"]
    assert set(created) == {"license_id", "organization_id", "project", "status", "starts_at", "expires_at", "items"}
    lic = License.objects.get(license_id=out["license_id"])
    for status in ("suspended", "active", "revoked"):
        set_license_status(license=lic, status=status, actor="t", now=now)
    set_license_status(license=lic, status="revoked", actor="t", now=now)  # no change, no event
    kinds = list(OutboxEvent.objects.order_by("id").values_list("type", flat=True))
    assert kinds == ["license.created", "license.suspended", "license.resumed", "license.revoked"]
    assert events("license.revoked")[0]["status"] == "revoked"
    other = License.objects.create(
        license_id="L-R", organization=lic.organization, starts_at=now, expires_at=now + timedelta(days=30)
    )
    renew_license(license=other, expires_at=now + timedelta(days=400), actor="t", now=now)
    assert events("license.created")[-1]["license_id"] == "L-R-R1"


def test_an_import_that_fails_writes_no_event(now):
    with pytest.raises(LicenseFileError):
        import_license(factories.license_file(items=[]), actor="t", now=now)
    assert not OutboxEvent.objects.exists()


def test_an_event_is_in_the_transaction_of_its_change(now):
    lic = factories.LicenseFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        set_license_status(license=lic, status="suspended", actor="t", now=now)
        raise RuntimeError("rolled back")
    assert not OutboxEvent.objects.exists()


def test_adding_quota_is_no_license_event(now):
    item = factories.LicenseItemFactory()
    add_quota(project=item.project, license=item.license, item_fields={"product": "dbr", "option": "per_client_device", "quantity": 3}, actor="t", now=now)  # fmt: skip
    assert not OutboxEvent.objects.exists()


def test_renewal_reminders_emit_license_expiring_with_days_left():
    expires = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    lic = factories.LicenseFactory(starts_at=expires - timedelta(days=365), expires_at=expires)
    jobs.send_renewal_reminders(now=expires - timedelta(days=30, hours=12))
    jobs.send_renewal_reminders(now=expires - timedelta(days=30, hours=11))  # a second run: nothing more
    (expiring,) = events("license.expiring")
    assert expiring["license_id"] == lic.license_id and expiring["days_left"] == 30


def test_the_alerts_job_emits_the_same_crossings_as_its_emails(now):
    lic = factories.LicenseFactory()
    AlertRecipient.objects.create(organization=lic.organization, email="ops@x.test")
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000, license=lic)
    pages = factories.LicenseItemFactory(per_page=True, product="dwt", quantities={"core": 100, "ocr": 10}, license=lic)
    servers = factories.LicenseItemFactory(per_server=True, quantity=1, license=lic, project=scans.project)
    factories.QuotaCounterFactory(item=scans, metric="barcode_scans", used=850)
    factories.QuotaCounterFactory(item=pages, metric="pages_ocr", used=10)
    factories.DeviceFactory(item=servers, now=now, client_type="server")
    jobs.send_usage_alerts(now=now)
    jobs.send_usage_alerts(now=now)
    crossed = {(e["item"], e["metric"], e["threshold"]): e for e in events("usage.threshold_crossed")}
    claimed = {(str(a.item_id), a.kind, a.threshold) for a in AlertSent.objects.all()}
    renamed = {(i, "servers" if k == "seats" else k, t) for i, k, t in claimed}
    assert set(crossed) == renamed and len(crossed) == 2 + 3 + 3
    assert crossed[(str(scans.pk), "barcode_scans", 80)] == {
        "organization": lic.organization_id,
        "project": {"id": str(scans.project_id), "name": scans.project.name},
        "item": str(scans.pk),
        "metric": "barcode_scans",
        "threshold": 80,
        "used": 850,
        "quantity": 1000,
    }
    assert crossed[(str(servers.pk), "servers", 100)]["used"] == 1


def test_the_expiry_job_emits_one_devices_expired_per_item_and_run(now):
    a = factories.LicenseItemFactory(per_client_device=True)
    b = factories.LicenseItemFactory(per_client_device=True)
    for _ in range(25):
        factories.DeviceFactory(item=a, active_until=now - timedelta(minutes=1))
    factories.DeviceFactory(item=b, active_until=now)
    factories.DeviceFactory(item=b, active_until=now + timedelta(minutes=1))
    assert jobs.expire_idle_devices(now=now)["expired"] == 26
    assert jobs.expire_idle_devices(now=now)["expired"] == 0
    got = sorted((e["item"], e["count"]) for e in events("devices.expired"))
    assert got == sorted([(str(a.pk), 25), (str(b.pk), 1)])


def test_release_emits_device_released_by_whom(client, now, no_rate_limits):
    item = factories.LicenseItemFactory(per_client_device=True)
    assert factories.authorize(client, item.project, "dev-9").status_code == 200
    factories.release(client, item.project, "dev-9")
    factories.release(client, item.project, "dev-9")  # a second call: nothing more
    (released,) = events("device.released")
    assert released["device_uuid"] == "dev-9" and released["by"] == "device" and released["item"] == str(item.pk)
    assert released["project"] == {"id": str(item.project_id), "name": item.project.name}


def test_key_rotation_emits_project_key_rotated(now):
    project = factories.ProjectFactory()
    rotate_key(project, grace_days=30, actor="t", now=now)
    (rotated,) = events("project.key_rotated")
    assert rotated["project"]["id"] == str(project.pk)
    assert rotated["old_key_expires_at"] == (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_of(now: datetime) -> datetime:
    return datetime.fromtimestamp(int(now.timestamp()) // REFUSED_WINDOW_S * REFUSED_WINDOW_S, UTC)


def test_ten_thousand_refusals_make_one_event_per_item_and_rule_and_window(now):
    item = factories.LicenseItemFactory(per_client_device=True)
    other = factories.LicenseItemFactory(per_client_device=True, project=item.project, license=item.license)
    start = window_of(now)
    Decision.objects.bulk_create(
        [
            Decision(
                project=item.project,
                device_uuid=f"d-{n:05d}",
                item=item,
                endpoint="authorize",
                allowed=False,
                code=120,
                rule="seat_grace_exhausted",
                created_at=start + timedelta(seconds=n % 600, microseconds=n),
            )
            for n in range(10_000)
        ]
        + [
            Decision(
                project=item.project,
                device_uuid="x",
                item=other,
                endpoint="authorize",
                allowed=False,
                code=113,
                rule="license_suspended",
                created_at=start + timedelta(seconds=5),
            ),  # fmt: skip
            Decision(
                project=item.project,
                device_uuid="y",
                item=item,
                endpoint="authorize",
                allowed=True,
                rule="seat_available",
                created_at=start,
            ),  # fmt: skip
            Decision(
                project=item.project,
                device_uuid="z",
                item=item,
                endpoint="authorize",
                allowed=False,
                code=120,
                rule="seat_grace_exhausted",
                created_at=start + timedelta(seconds=600),
            ),  # fmt: skip
        ]
    )
    flush_refused_events(now=start + timedelta(seconds=REFUSED_WINDOW_S - 1))  # the window is still open
    assert not events("devices.refused")
    flush_refused_events(now=start + timedelta(seconds=REFUSED_WINDOW_S + 31))
    flush_refused_events(now=start + timedelta(seconds=REFUSED_WINDOW_S + 90))  # again: nothing more
    refused = sorted(events("devices.refused"), key=lambda e: e["rule"])
    assert [(e["item"], e["rule"], e["count"]) for e in refused] == [
        (str(other.pk), "license_suspended", 1),
        (str(item.pk), "seat_grace_exhausted", 10_000),
    ]
    seats = refused[1]
    assert seats["first_refused_at"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert seats["last_refused_at"] == (start + timedelta(seconds=599)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert seats["sample_device_uuid"] == "d-00000" and seats["code"] == 120
    assert seats["project"]["id"] == str(item.project_id)
    flush_refused_events(now=start + timedelta(seconds=2 * REFUSED_WINDOW_S + 31))  # the next window
    assert [e["count"] for e in events("devices.refused")][-1] == 1


def test_a_refused_authorization_writes_nothing_for_webhooks(client, now, settings, no_rate_limits):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    item = factories.LicenseItemFactory(per_server=True, quantity=1, edition="server")
    assert factories.authorize(client, item.project, "s-1", client_type="server", edition="server").status_code == 200

    def refused_queries():
        with CaptureQueriesContext(connection) as ctx:
            response = factories.authorize(client, item.project, "s-2", client_type="server", edition="server")
        assert response.status_code == 403
        return [q["sql"] for q in ctx.captured_queries]

    without = refused_queries()
    create_endpoint(url="http://127.0.0.1:9/h", events=["devices.refused"], organization=None, created_by_name="t", now=now)  # fmt: skip
    with_endpoint = refused_queries()
    assert len(with_endpoint) == len(without)
    assert not any("outbox" in q or "webhook" in q for q in with_endpoint)
    assert Device.objects.filter(device_uuid="s-2").count() == 0


SPEC_EVENT_TYPES = {  # the table of SPEC section 14
    "license.created",
    "license.suspended",
    "license.resumed",
    "license.revoked",
    "license.expiring",
    "usage.threshold_crossed",
    "devices.refused",
    "devices.expired",
    "device.released",
    "project.key_rotated",
}


def test_every_event_type_of_the_table_exists_and_an_unknown_one_is_refused():
    assert set(EVENT_TYPES) >= SPEC_EVENT_TYPES
    with pytest.raises(ValueError):
        emit("license.renamed", {}, organization=None, now=datetime.now(UTC))
