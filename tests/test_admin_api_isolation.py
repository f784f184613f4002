"""An organization token cannot see a byte of another organization's data (SPEC section 13): a
matrix over every route of the admin API, as the portal has for its pages. Another
organization's objects are 404; issuing and the audit log are 403; lists hold only its own."""

from __future__ import annotations

import pytest

from licenses.events import emit
from licenses.models import WebhookEndpoint
from tests import factories
from tests.admin_api import call, token
from usage.webhooks.dispatch import dispatch_events
from usage.webhooks.endpoints import create_endpoint
from usage.webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


@pytest.fixture
def w(now, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return world_with_hook(now)


def world_with_hook(now, tag: str = ""):
    """``factories.world`` and, for the second organization, an endpoint with one delivery."""
    w = factories.world(now, tag=tag)
    w.other_license = w.other_device.item.license
    w.other_hook, _ = create_endpoint(
        url="http://127.0.0.1:9/globex-hook", events=None, organization=w.other_org, created_by_name="t", now=now
    )
    emit("license.created", {"license_id": w.other_license.license_id}, organization=w.other_org, now=now)
    dispatch_events(now=now)
    w.other_delivery = WebhookDelivery.objects.get(endpoint=w.other_hook)
    return w


def secrets_of(w) -> list[str]:
    """What must never appear in an answer to the first organization's token."""
    return [
        w.other_org.name,
        w.other_project.name,
        w.other_device.device_uuid,
        w.other_license.license_id,
        w.other_project.license_key,
        "globex-hook",
    ]


def other_routes(w) -> list[tuple[str, str, dict | None, int]]:
    """(method, path, body, status for an organization write token) over every route."""
    p, lic, hook = w.other_project.pk, w.other_license.license_id, w.other_hook.pk
    items = [str(w.other_device.item_id)]
    protection = {"session_password": None, "domains": [], "app_ids": [], "process_names": []}
    return [
        ("POST", "/licenses", factories.license_file(organization={"id": w.other_org.id}), 403),
        ("GET", f"/licenses/{lic}", None, 404),
        ("POST", f"/licenses/{lic}/suspend", None, 403),
        ("POST", f"/licenses/{lic}/resume", None, 403),
        ("POST", f"/licenses/{lic}/revoke", None, 403),
        ("GET", f"/organizations/{w.other_org.id}", None, 404),
        ("GET", f"/projects/{p}", None, 404),
        ("PUT", f"/projects/{p}/order", {"items": items}, 404),
        ("POST", f"/projects/{p}/rotate-key", {"grace_days": 0}, 404),
        ("PUT", f"/projects/{p}/protection", protection, 404),
        ("GET", f"/projects/{p}/devices", None, 404),
        ("POST", f"/projects/{p}/devices/{w.other_device.device_uuid}/release", None, 404),
        ("GET", f"/projects/{p}/usage?what=usage", None, 404),
        ("GET", f"/projects/{p}/decisions", None, 404),
        ("GET", "/audit-log", None, 403),
        ("GET", f"/webhooks/{hook}", None, 404),
        ("PATCH", f"/webhooks/{hook}", {"enabled": False}, 404),
        ("DELETE", f"/webhooks/{hook}", None, 404),
        ("GET", f"/webhooks/{hook}/deliveries", None, 404),
        ("POST", f"/webhooks/{hook}/deliveries/{w.other_delivery.pk}/redeliver", None, 404),
    ]


LISTS = ["/licenses", "/organizations", "/webhooks"]


@pytest.mark.parametrize("scope", ["read", "write"])
def test_another_organizations_objects_do_not_exist_for_an_organization_token(client, w, scope):
    secret = token(scope, w.org)
    key_before = w.other_project.license_key
    for method, path, body, status in other_routes(w):
        response = call(client, method, path, secret, body)
        assert response.status_code == status, (scope, method, path, response.content)
        content = response.content.decode()
        assert not any(s in content for s in secrets_of(w)), (method, path, content)
    w.other_project.refresh_from_db()
    w.other_hook.refresh_from_db()
    w.other_device.refresh_from_db()
    assert w.other_project.license_key == key_before and w.other_hook.enabled
    assert w.other_device.state == "active"
    assert WebhookEndpoint.objects.filter(pk=w.other_hook.pk).exists()


@pytest.mark.parametrize("path", LISTS)
def test_lists_hold_only_the_organizations_own_data(client, w, path):
    own_hook, _ = create_endpoint(
        url="http://127.0.0.1:9/acme-hook", events=None, organization=w.org, created_by_name="t", now=w.now
    )
    response = call(client, "GET", path, token("read", w.org))
    assert response.status_code == 200
    content = response.content.decode()
    assert response.json()["data"], path  # its own data is there
    assert not any(s in content for s in secrets_of(w)), content
    staff = call(client, "GET", path, token("read")).content.decode()
    assert any(s in staff for s in secrets_of(w))  # the same list for staff has them: the check can fail


def test_an_organization_token_reaches_its_own_objects(client, w):
    secret = token("write", w.org)
    p = w.project.pk
    assert call(client, "GET", f"/projects/{p}", secret).status_code == 200
    assert call(client, "GET", f"/projects/{p}/devices", secret).status_code == 200
    assert call(client, "GET", f"/projects/{p}/decisions", secret).status_code == 200
    assert call(client, "GET", f"/licenses/{w.seats.license.license_id}", secret).status_code == 200
    assert call(client, "GET", f"/organizations/{w.org.id}", secret).status_code == 200
    response = call(client, "POST", f"/projects/{p}/devices/{w.device.device_uuid}/release", secret)
    assert response.status_code == 200
    # An organization token's endpoint is its organization's, whatever the body says.
    response = call(client, "POST", "/webhooks", secret, {"url": "http://127.0.0.1:9/mine"})
    assert response.status_code == 201 and response.json()["organization"] == w.org.id
    response = call(
        client, "POST", "/webhooks", secret, {"url": "http://127.0.0.1:9/x", "organization": w.other_org.id}
    )
    assert response.status_code == 400


def test_an_organizations_endpoint_gets_only_its_organizations_events(w, now):
    own, _ = create_endpoint(
        url="http://127.0.0.1:9/acme", events=None, organization=w.org, created_by_name="t", now=now
    )
    staff, _ = create_endpoint(
        url="http://127.0.0.1:9/staff", events=None, organization=None, created_by_name="t", now=now
    )
    emit("license.created", {"n": 1}, organization=w.org, now=now)
    emit("license.created", {"n": 2}, organization=w.other_org, now=now)
    dispatch_events(now=now)
    assert [d.event.data for d in WebhookDelivery.objects.filter(endpoint=own)] == [{"n": 1}]
    assert sorted(d.event.data["n"] for d in WebhookDelivery.objects.filter(endpoint=staff)) == [1, 2]
