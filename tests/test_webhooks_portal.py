"""The portal's integrations pages (SPEC sections 10, 13, 14): an owner creates and revokes
organization tokens and registers, rotates, deletes and redelivers webhook endpoints; destructive
actions ask for confirmation; members read; staff read-only; outsiders get 404."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from licenses.events import emit
from licenses.models import ApiToken, AuditLog, WebhookEndpoint, token_digest
from tests import factories
from tests.admin_api import call
from usage.webhooks.dispatch import dispatch_events
from usage.webhooks.endpoints import create_endpoint
from usage.webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]
BACKEND = factories.MODEL_BACKEND


@pytest.fixture
def w(now, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return factories.world(now)


def login(user) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


def test_an_owner_creates_a_token_shown_once_that_reads_only_its_organization(w):
    owner = login(w.owner)
    page = owner.get(reverse("portal:integrations", args=[w.org.pk]))
    assert page.status_code == 200 and b"Create a token" in page.content
    response = owner.post(reverse("portal:token_create", args=[w.org.pk]), {"name": "CRM", "scope": "read"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    token = ApiToken.objects.get()
    assert token.digest == token_digest(secret) and token.organization == w.org and token.created_by == w.owner
    listing = owner.get(reverse("portal:integrations", args=[w.org.pk])).content.decode()
    assert secret not in listing and token.prefix in listing
    assert call(Client(), "GET", f"/projects/{w.project.pk}", secret).status_code == 200
    assert call(Client(), "GET", f"/projects/{w.other_project.pk}", secret).status_code == 404
    assert AuditLog.objects.filter(action="api_token.create", actor=w.owner).exists()


def test_revoking_a_token_asks_first(w, now):
    token, secret = ApiToken.create_token(scope="read", organization=w.org, name="old", now=now)
    owner = login(w.owner)
    url = reverse("portal:token_revoke", args=[w.org.pk, token.pk])
    confirm = owner.get(url)
    assert confirm.status_code == 200 and b"stop working at once" in confirm.content
    owner.post(url)  # no confirmation: nothing happens
    token.refresh_from_db()
    assert token.revoked_at is None
    assert owner.post(url, {"confirm": "yes"}).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at == now
    assert call(Client(), "GET", "/licenses", secret).status_code == 401


def test_an_owner_registers_an_endpoint_sees_deliveries_and_redelivers(w, now):
    owner = login(w.owner)
    response = owner.post(
        reverse("portal:webhook_create", args=[w.org.pk]),
        {"url": "http://127.0.0.1:9/h", "events": ["license.revoked"]},
    )
    assert response.status_code == 200 and response.context["secret"].startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.organization == w.org and endpoint.events == ["license.revoked"]
    emit("license.revoked", {"license_id": "x"}, organization=w.org, now=now)
    dispatch_events(now=now)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(status="failed", attempts=8)
    page = owner.get(reverse("portal:webhook", args=[w.org.pk, endpoint.pk]))
    assert page.status_code == 200 and delivery.event.event_id.encode() in page.content
    redeliver = reverse("portal:webhook_redeliver", args=[w.org.pk, endpoint.pk, delivery.pk])
    assert owner.post(redeliver).status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    bad = owner.post(reverse("portal:webhook_create", args=[w.org.pk]), {"url": "not a url"})
    assert bad.status_code == 400


def test_rotating_and_deleting_an_endpoint_ask_first(w, now):
    endpoint, secret = create_endpoint(url="http://127.0.0.1:9/h", events=None, organization=w.org, created_by_name="t", now=now)  # fmt: skip
    owner = login(w.owner)
    rotate = reverse("portal:webhook_rotate", args=[w.org.pk, endpoint.pk])
    assert b"both the new" in owner.get(rotate).content
    response = owner.post(rotate, {"confirm": "yes"})
    endpoint.refresh_from_db()
    assert response.context["secret"] == endpoint.secret != secret and endpoint.previous_secret == secret
    delete = reverse("portal:webhook_delete", args=[w.org.pk, endpoint.pk])
    assert b"cannot be undone" in owner.get(delete).content
    owner.post(delete)
    assert WebhookEndpoint.objects.exists()
    owner.post(delete, {"confirm": "yes"})
    assert not WebhookEndpoint.objects.exists()


def test_who_may_do_what(w, now):
    token, _ = ApiToken.create_token(scope="read", organization=w.org, name="t", now=now)
    endpoint, _ = create_endpoint(url="http://127.0.0.1:9/h", events=None, organization=w.org, created_by_name="t", now=now)  # fmt: skip
    pages = [reverse("portal:integrations", args=[w.org.pk]), reverse("portal:webhook", args=[w.org.pk, endpoint.pk])]
    writes = [
        (reverse("portal:token_create", args=[w.org.pk]), {"name": "x", "scope": "write"}),
        (reverse("portal:token_revoke", args=[w.org.pk, token.pk]), {"confirm": "yes"}),
        (reverse("portal:webhook_create", args=[w.org.pk]), {"url": "http://127.0.0.1:9/x"}),
        (reverse("portal:webhook_delete", args=[w.org.pk, endpoint.pk]), {"confirm": "yes"}),
        (reverse("portal:webhook_rotate", args=[w.org.pk, endpoint.pk]), {"confirm": "yes"}),
    ]
    for user, read, write in [(w.viewer, 200, 403), (w.staff, 200, 403), (w.outsider, 404, 404)]:
        client = login(user)
        for url in pages:
            assert client.get(url).status_code == read, (user, url)
        for url, data in writes:
            assert client.post(url, data).status_code == write, (user, url)
    assert ApiToken.objects.count() == 1 and ApiToken.objects.get().revoked_at is None
    assert WebhookEndpoint.objects.count() == 1
    # Another organization's token or endpoint is 404 even for its own owner's URL.
    other, _ = ApiToken.create_token(scope="read", organization=w.other_org, name="o", now=now)
    assert login(w.owner).get(reverse("portal:token_revoke", args=[w.org.pk, other.pk])).status_code == 404
    home = login(w.owner).get(reverse("portal:home")).content.decode()
    assert reverse("portal:integrations", args=[w.org.pk]) in home
