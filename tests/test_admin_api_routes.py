"""Every route of the admin API (SPEC section 13): success, 401, 403, 404, 400 with fields, 409."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from devices.models import Device
from licenses.clock import rfc3339
from licenses.events import EVENT_TYPES
from licenses.models import ApiToken, AuditLog, License, OutboxEvent
from tests import factories
from tests.admin_api import call, error, token
from usage.webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


@pytest.fixture
def w(now):
    return factories.world(now)


@pytest.fixture
def staff():
    return token("write")


@pytest.fixture
def staff_read():
    return token("read")


# --- authentication ------------------------------------------------------------------------------


def test_missing_unknown_expired_and_revoked_tokens_are_401(client, now):
    expired = token("write", expires_at=now - timedelta(seconds=1))
    revoked = token("write")
    ApiToken.objects.filter(prefix=revoked[:10]).update(revoked_at=now)
    for secret in (None, "dls_not-a-token", expired, revoked):
        response = call(client, "GET", "/licenses", secret)
        assert response.status_code == 401, secret
        assert error(response)["code"] == 5 and error(response)["name"] == "UNAUTHENTICATED"
    response = client.get("/api/admin/v1/licenses", HTTP_AUTHORIZATION="Basic abc")
    assert response.status_code == 401


def test_a_token_is_stored_as_a_keyed_hash_and_last_used_is_written_once_a_minute(client, now, staff_read):
    row = ApiToken.objects.get()
    assert staff_read not in (row.digest, row.prefix) and len(row.digest) == 64
    assert call(client, "GET", "/licenses", staff_read).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == now
    factories.move_clock(now + timedelta(seconds=59))
    call(client, "GET", "/licenses", staff_read)
    row.refresh_from_db()
    assert row.last_used_at == now  # not on every request
    factories.move_clock(now + timedelta(seconds=61))
    call(client, "GET", "/licenses", staff_read)
    row.refresh_from_db()
    assert row.last_used_at == now + timedelta(seconds=61)


def test_the_rate_limit_is_per_token_with_retry_after(client, settings, staff_read):
    settings.ADMIN_API_RATE_LIMIT = "3/m"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rl-admin"}}
    other = token("read")
    statuses = [call(client, "GET", "/organizations", staff_read).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = call(client, "GET", "/organizations", staff_read)
    assert error(response)["code"] == 3 and int(response["Retry-After"]) >= 1
    assert call(client, "GET", "/organizations", other).status_code == 200


def test_a_cache_that_fails_lets_requests_through(client, settings, staff_read, monkeypatch):
    settings.ADMIN_API_RATE_LIMIT = "1/m"

    def broken(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr("api.admin.auth._hit", broken)
    assert [call(client, "GET", "/organizations", staff_read).status_code for _ in range(3)] == [200, 200, 200]


# --- licenses ------------------------------------------------------------------------------------


def test_post_licenses_answers_201_with_the_import_output_and_audits_the_token(client, staff):
    body = factories.spec_example()
    response = call(client, "POST", "/licenses", staff, body)
    assert response.status_code == 201, response.content
    out = response.json()
    assert list(out) == ["license_id", "organization_id", "project", "license_key", "items"]
    assert out["license_id"] == "L-2026-0001" and out["project"] == "acme-web" and len(out["items"]) == 7
    assert all(isinstance(i["id"], str) for i in out["items"])
    log = AuditLog.objects.get(action="license.import")
    assert log.actor_name.startswith("token:") and "(by " in log.actor_name
    assert OutboxEvent.objects.filter(type="license.created").count() == 1


def test_renewal_and_added_quota_are_a_license_file_naming_the_project(client, staff):
    first = call(client, "POST", "/licenses", staff, factories.license_file(project="acme-web")).json()
    again = call(client, "POST", "/licenses", staff, factories.license_file(project="acme-web")).json()
    assert again["license_key"] == first["license_key"]


def test_post_licenses_400_names_the_field_and_409_for_a_license_id_already_imported(client, staff):
    bad = factories.license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": 0}])
    response = call(client, "POST", "/licenses", staff, bad)
    assert response.status_code == 400 and error(response)["code"] == 1
    assert "items[0].quantity" in error(response)["fields"]
    body = factories.license_file()
    assert call(client, "POST", "/licenses", staff, body).status_code == 201
    response = call(client, "POST", "/licenses", staff, body)
    assert response.status_code == 409 and error(response)["code"] == 8 and error(response)["name"] == "CONFLICT"
    response = call(client, "POST", "/licenses", staff, "[1, 2")
    assert response.status_code == 400


def test_issuing_is_403_for_read_tokens_and_organization_tokens(client, w):
    for secret in (token("read"), token("write", w.org)):
        response = call(client, "POST", "/licenses", secret, factories.license_file())
        assert response.status_code == 403 and error(response)["code"] == 6
        lic = w.seats.license.license_id
        for action in ("suspend", "resume", "revoke"):
            assert call(client, "POST", f"/licenses/{lic}/{action}", secret).status_code == 403
    assert License.objects.filter(status=License.ACTIVE).count() == License.objects.count()


def test_list_and_get_licenses_with_filters_and_cursor(client, w, staff_read, now):
    for n in range(5):
        factories.LicenseFactory(organization=w.other_org, license_id=f"L-PAGE-{n}")
    response = call(client, "GET", "/licenses?limit=2", staff_read)
    assert response.status_code == 200
    page = response.json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    seen = [lic["license_id"] for lic in page["data"]]
    while page["next_cursor"]:
        page = call(client, "GET", f"/licenses?limit=2&cursor={page['next_cursor']}", staff_read).json()
        seen += [lic["license_id"] for lic in page["data"]]
    assert len(seen) == len(set(seen)) == License.objects.count()
    org = call(client, "GET", f"/licenses?organization={w.org.id}", staff_read).json()["data"]
    assert {lic["organization_id"] for lic in org} == {w.org.id}
    soon = (now + timedelta(days=21)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = call(client, "GET", f"/licenses?expires_before={soon}", staff_read).json()["data"]
    assert w.seats.license.license_id in {lic["license_id"] for lic in before}
    by_project = call(client, "GET", f"/licenses?project={w.project.name}", staff_read).json()["data"]
    assert [lic["license_id"] for lic in by_project] == [w.seats.license.license_id]
    one = call(client, "GET", f"/licenses/{w.seats.license.license_id}", staff_read).json()
    assert set(one) == {"license_id", "organization_id", "project", "status", "starts_at", "expires_at", "items"}
    assert one["project"] == w.project.name and len(one["items"]) == 6
    assert call(client, "GET", "/licenses/L-NOPE", staff_read).status_code == 404
    for query in ("limit=0", "limit=501", "cursor=zz", "status=gone", "expires_after=yesterday"):
        response = call(client, "GET", f"/licenses?{query}", staff_read)
        assert response.status_code == 400 and error(response)["fields"], query


def test_suspend_resume_revoke_answer_the_license_and_revoke_is_final(client, w, staff):
    lic = w.seats.license.license_id
    assert call(client, "POST", f"/licenses/{lic}/suspend", staff).json()["status"] == "suspended"
    assert call(client, "POST", f"/licenses/{lic}/resume", staff).json()["status"] == "active"
    assert call(client, "POST", f"/licenses/{lic}/revoke", staff).json()["status"] == "revoked"
    response = call(client, "POST", f"/licenses/{lic}/resume", staff)
    assert response.status_code == 409 and error(response)["code"] == 8
    assert call(client, "POST", "/licenses/L-NOPE/suspend", staff).status_code == 404
    types = list(OutboxEvent.objects.values_list("type", flat=True))
    assert types == ["license.suspended", "license.resumed", "license.revoked"]


# --- organizations, projects ----------------------------------------------------------------------


def test_organizations_with_their_projects(client, w, staff_read):
    data = call(client, "GET", "/organizations", staff_read).json()["data"]
    acme = next(o for o in data if o["id"] == w.org.id)
    assert acme == {"id": w.org.id, "name": w.org.name, "projects": [{"id": str(w.project.pk), "name": w.project.name}]}
    assert call(client, "GET", f"/organizations/{w.org.id}", staff_read).json() == acme
    assert call(client, "GET", "/organizations/nope", staff_read).status_code == 404


def test_a_project_lists_items_in_consumption_order_and_the_key_for_write_tokens_only(client, w, staff, staff_read):
    read = call(client, "GET", f"/projects/{w.project.pk}", staff_read).json()
    assert "license_key" not in read and read["id"] == str(w.project.pk)
    written = call(client, "GET", f"/projects/{w.project.pk}", staff).json()
    assert written["license_key"] == w.project.license_key
    assert [i["id"] for i in written["items"]] == [i.item_id for i in w.project.items_in_order()]
    seats = next(i for i in written["items"] if i["id"] == w.seats.item_id)
    assert (
        seats["quantity"] == 10 and seats["active_seats"] == seats["used"] == 3 and seats["remaining"] == {"seats": 7}
    )
    scan = next(i for i in written["items"] if i["id"] == w.scan.item_id)
    assert scan["used"] == 8500 and scan["remaining"] == {"barcode_scans": 1500}
    for bad in ("999999", "abc"):
        assert call(client, "GET", f"/projects/{bad}", staff_read).status_code == 404


def test_put_order_needs_every_item_exactly_once(client, w, staff):
    ids = [i.item_id for i in w.project.items_in_order()][::-1]
    response = call(client, "PUT", f"/projects/{w.project.pk}/order", staff, {"items": ids})
    assert response.status_code == 200
    assert [i["id"] for i in response.json()["items"]] == ids
    response = call(client, "PUT", f"/projects/{w.project.pk}/order", staff, {"items": ids[:-1]})
    assert response.status_code == 400 and "items" in error(response)["fields"]
    response = call(client, "PUT", f"/projects/{w.project.pk}/order", staff, {"items": "x"})
    assert response.status_code == 400 and "items" in error(response)["fields"]
    assert call(client, "PUT", f"/projects/{w.project.pk}/order", token("read"), {"items": ids}).status_code == 403


def test_rotate_key_answers_the_new_key_and_when_the_old_one_stops(client, w, staff, now):
    old = w.project.license_key
    response = call(client, "POST", f"/projects/{w.project.pk}/rotate-key", staff, {"grace_days": 7})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["license_key"] != old and body["old_key_expires_at"] == rfc3339(now + timedelta(days=7))
    response = call(client, "POST", f"/projects/{w.project.pk}/rotate-key", staff, {"grace_days": -1})
    assert response.status_code == 400 and "grace_days" in error(response)["fields"]
    assert OutboxEvent.objects.filter(type="project.key_rotated").count() == 1


def test_put_protection(client, w, staff):
    body = {
        "session_password": "s3cret",
        "domains": ["*.acme.example"],
        "app_ids": ["com.acme.app"],
        "process_names": [],
    }
    response = call(client, "PUT", f"/projects/{w.project.pk}/protection", staff, body)
    assert response.status_code == 200, response.content
    assert response.json()["session_password"] is True and response.json()["allowed_app_ids"] == ["com.acme.app"]
    assert "s3cret" not in response.content.decode()
    response = call(client, "PUT", f"/projects/{w.project.pk}/protection", staff, {**body, "domains": ["not a domain"]})
    assert response.status_code == 400 and error(response)["fields"]
    response = call(client, "PUT", f"/projects/{w.project.pk}/protection", staff, {**body, "extra": 1})
    assert response.status_code == 400


def test_devices_with_filters_and_release(client, w, staff, staff_read):
    base = f"/projects/{w.project.pk}/devices"
    every = call(client, "GET", base, staff_read).json()["data"]
    assert len(every) == Device.objects.filter(project=w.project).count()
    active = call(client, "GET", f"{base}?state=active", staff_read).json()["data"]
    assert {d["state"] for d in active} == {"active"}
    found = call(client, "GET", f"{base}?q=front desk 1", staff_read).json()["data"]
    assert [d["device_name"] for d in found] == ["Front desk 1"]
    of_item = call(client, "GET", f"{base}?item={w.server.item_id}", staff_read).json()["data"]
    assert [d["device_name"] for d in of_item] == ["app-server-1"]
    assert call(client, "GET", f"{base}?state=gone", staff_read).status_code == 400
    uuid = w.device.device_uuid
    response = call(client, "POST", f"{base}/{uuid}/release", staff)
    assert response.status_code == 200 and response.json()["state"] == "released"
    assert OutboxEvent.objects.get(type="device.released").data["by"] == "token"
    assert call(client, "POST", f"{base}/nope/release", staff).status_code == 404


def test_usage_and_decisions(client, w, staff_read, now):
    base = f"/projects/{w.project.pk}"
    rows = call(client, "GET", f"{base}/usage?what=usage", staff_read).json()["data"]
    assert rows and set(rows[0]) == {"bucket_start", "item", "metric", "count"} and isinstance(rows[0]["count"], int)
    conc = call(client, "GET", f"{base}/usage?what=concurrency&limit=2", staff_read).json()
    assert len(conc["data"]) == 2 and conc["next_cursor"]
    assert conc["data"][0]["slot_start"] > conc["data"][1]["slot_start"]  # newest first
    rest = call(client, "GET", f"{base}/usage?what=concurrency&cursor={conc['next_cursor']}", staff_read).json()
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None
    assert call(client, "GET", f"{base}/usage?what=devices", staff_read).status_code == 400
    assert call(client, "GET", f"{base}/usage?from=bad", staff_read).status_code == 400
    decisions = call(client, "GET", f"{base}/decisions", staff_read).json()["data"]
    assert decisions and {"rule", "counts", "allowed", "code"} <= set(decisions[0])
    uuid = w.device.device_uuid
    mine = call(client, "GET", f"{base}/decisions?device_uuid={uuid}&allowed=true", staff_read).json()["data"]
    assert {d["device_uuid"] for d in mine} == {uuid}
    assert call(client, "GET", f"{base}/decisions?from=2026-13-01", staff_read).status_code == 400


def test_the_audit_log_is_for_staff_tokens(client, w, staff, staff_read):
    call(client, "POST", f"/licenses/{w.seats.license.license_id}/suspend", staff)
    rows = call(client, "GET", "/audit-log", staff_read).json()["data"]
    assert rows[0]["action"] == "license.suspend" and rows[0]["actor"].startswith("token:")
    response = call(client, "GET", "/audit-log", token("read", w.org))
    assert response.status_code == 403 and error(response)["code"] == 6


# --- webhooks ------------------------------------------------------------------------------------


def test_webhook_crud_shows_the_secret_once(client, w, staff, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    response = call(
        client, "POST", "/webhooks", staff, {"url": "http://127.0.0.1:9/hook", "events": ["license.created"]}
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) == {"id", "url", "events", "organization", "enabled", "secret"}
    assert created["secret"].startswith("whsec_") and created["organization"] is None
    got = call(client, "GET", f"/webhooks/{created['id']}", staff).json()
    assert "secret" not in got and got["events"] == ["license.created"]
    every = call(client, "POST", "/webhooks", staff, {"url": "http://127.0.0.1:9/all", "organization": w.org.id}).json()
    assert every["organization"] == w.org.id and every["events"] == list(EVENT_TYPES)
    assert len(call(client, "GET", "/webhooks", staff).json()["data"]) == 2
    patched = call(client, "PATCH", f"/webhooks/{created['id']}", staff, {"enabled": False, "rotate_secret": True})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert patched.json()["secret"] != created["secret"]
    response = call(client, "DELETE", f"/webhooks/{created['id']}", staff)
    assert response.status_code == 200
    assert call(client, "GET", f"/webhooks/{created['id']}", staff).status_code == 404
    actions = set(AuditLog.objects.filter(object_type="webhookendpoint").values_list("action", flat=True))
    assert actions == {"webhook.create", "webhook.change", "webhook.delete"}


def fake_dns(names: dict[str, str]):
    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names and not host.replace(".", "").isdigit():
            raise socket.gaierror("unknown host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names.get(host, host), port))]

    return getaddrinfo


def test_webhook_400s(client, w, staff, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    dns = {"example.com": "93.184.216.34", "inside.example.com": "192.168.1.10"}
    monkeypatch.setattr("usage.webhooks.guard.socket.getaddrinfo", fake_dns(dns))
    response = call(client, "POST", "/webhooks", staff, {"url": "https://example.com/x"})
    assert response.status_code == 201
    for body, field in [
        ({"url": "http://127.0.0.1/hook"}, "url"),
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://inside.example.com/x"}, "url"),  # a public name of a private address
        ({"url": "https://nowhere.invalid/x"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com/x", "events": ["nope"]}, "events"),
        ({"url": "https://example.com/x", "organization": "nope"}, "organization"),
        ({}, "url"),
    ]:
        response = call(client, "POST", "/webhooks", staff, body)
        assert response.status_code == 400 and field in error(response)["fields"], (body, response.content)


def test_deliveries_and_redeliver(client, w, staff, settings, now):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    hook = call(client, "POST", "/webhooks", staff, {"url": "http://127.0.0.1:9/hook"}).json()
    call(client, "POST", f"/licenses/{w.seats.license.license_id}/suspend", staff)
    from usage.webhooks.dispatch import dispatch_events

    dispatch_events(now=now)
    deliveries = call(client, "GET", f"/webhooks/{hook['id']}/deliveries", staff).json()["data"]
    assert [d["type"] for d in deliveries] == ["license.suspended"] and deliveries[0]["status"] == "pending"
    WebhookDelivery.objects.update(status=WebhookDelivery.FAILED, attempts=8)
    path = f"/webhooks/{hook['id']}/deliveries/{deliveries[0]['id']}/redeliver"
    response = call(client, "POST", path, staff)
    assert response.status_code == 200 and response.json()["status"] == "pending" and response.json()["attempts"] == 0
    assert call(client, "POST", f"/webhooks/{hook['id']}/deliveries/999999/redeliver", staff).status_code == 404
    assert call(client, "POST", path, token("read")).status_code == 403


def test_unknown_routes_answer_the_error_body(client, staff_read):
    response = call(client, "GET", "/nothing-here", staff_read)
    assert response.status_code == 404


@pytest.fixture
def every_route(settings, now):
    from tests.test_admin_api_isolation import other_routes, world_with_hook

    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return other_routes(world_with_hook(now))


def test_every_route_is_401_without_a_token_and_403_for_a_read_token_writing(client, every_route):
    read = token("read")
    for method, path, body, _ in every_route:
        response = call(client, method, path, None, body)
        assert response.status_code == 401 and error(response)["code"] == 5, (method, path)
        if method != "GET":
            response = call(client, method, path, read, body)
            assert response.status_code == 403 and error(response)["code"] == 6, (method, path, response.content)


def test_ids_that_are_digits_only_in_unicode_are_404_not_500(client, staff):
    for path in ("/projects/%C2%B3", "/projects/%C2%B3/devices", "/webhooks/%C2%B3", "/projects/1/devices?item=%C2%B3"):
        assert call(client, "GET", path, staff).status_code in (400, 404), path
    assert call(client, "GET", "/licenses?project=%C2%B3", staff).status_code == 200
