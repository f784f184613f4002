"""Tokens from the command line and the staff admin (SPEC section 13), and the admin's webhook
endpoints and delivery log with its redeliver action (SPEC section 14)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from licenses.events import emit
from licenses.models import ApiToken, AuditLog, WebhookEndpoint, token_digest
from tests import factories
from tests.admin_api import call
from usage.webhooks.dispatch import dispatch_events
from usage.webhooks.models import WebhookDelivery

ROOT = Path(__file__).resolve().parent.parent


def create_api_token(*args: str, database: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database}
    return subprocess.run(
        [sys.executable, "manage.py", "create_api_token", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def database_url(connection) -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_create_api_token_prints_the_token_alone(now):
    from django.db import connection

    url = database_url(connection)
    result = create_api_token("--staff", "--scope", "write", "--name", "order desk", database=url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") <= 1 and result.stdout.strip() == result.stdout.rstrip("\n")
    secret = result.stdout.strip()
    assert secret.startswith("dls_") and " " not in secret and len(secret) > 40
    staff = ApiToken.objects.get(digest=token_digest(secret))
    assert staff.organization is None and staff.scope == "write" and staff.name == "order desk"
    assert staff.expires_at is None and staff.created_by_name.startswith("cli:")
    assert call(Client(), "GET", "/licenses", secret).status_code == 200

    assert AuditLog.objects.filter(action="api_token.create").count() == 1


@pytest.mark.django_db
def test_create_api_token_for_an_organization_with_expiry_and_its_errors():
    org = factories.OrganizationFactory()
    out = io.StringIO()
    call_command("create_api_token", "--organization", org.id, "--scope", "read", "--expires-in-days", "7", stdout=out)
    mine = ApiToken.objects.get(digest=token_digest(out.getvalue().strip()))
    assert mine.organization == org and mine.scope == "read"
    assert timedelta(days=6, hours=23) < mine.expires_at - timezone.now() <= timedelta(days=7)
    for args in (
        ["--scope", "read"],  # neither --staff nor --organization
        ["--staff", "--organization", org.id, "--scope", "read"],
        ["--staff", "--scope", "admin"],
        ["--organization", "nope", "--scope", "read"],
        ["--staff", "--scope", "read", "--expires-in-days", "0"],
    ):
        out = io.StringIO()
        with pytest.raises((CommandError, SystemExit)):
            call_command("create_api_token", *args, stdout=out, stderr=io.StringIO())
        assert out.getvalue() == "", args
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_staff_create_a_token_in_the_admin_shown_once_and_revoke_it():
    client, user = factories.staff_client()
    response = client.post(
        "/admin/licenses/apitoken/add/",
        {"name": "CRM", "scope": "read", "organization": "", "expires_in_days": "30"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    (secret,) = [m.rsplit(" ", 1)[1] for m in shown if "shown only now" in m]
    token = ApiToken.objects.get()
    assert token.digest == token_digest(secret) and token.created_by == user and token.expires_at is not None
    assert secret not in client.get(f"/admin/licenses/apitoken/{token.pk}/change/").content.decode()
    client.post("/admin/licenses/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert call(Client(), "GET", "/licenses", secret).status_code == 401


@pytest.mark.django_db
def test_staff_register_an_endpoint_in_the_admin_and_redeliver_from_the_log(settings, now):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    client, _ = factories.staff_client()
    response = client.post(
        "/admin/licenses/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/hook", "events": ["license.created"], "organization": "", "enabled": "on"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("whsec_" in m for m in shown), shown
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["license.created"] and endpoint.organization is None
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    response = client.post(
        "/admin/licenses/webhookendpoint/add/", {"url": "http://10.0.0.1/x", "organization": "", "enabled": "on"}
    )
    assert response.status_code == 200 and b"private" in response.content
    assert WebhookEndpoint.objects.count() == 1

    emit("license.created", {"x": 1}, organization=None, now=now)
    dispatch_events(now=now)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(status="failed", attempts=8)
    page = client.get("/admin/usage/webhookdelivery/")
    assert page.status_code == 200 and delivery.event.event_id.encode() in page.content
    assert client.get(f"/admin/usage/webhookdelivery/{delivery.pk}/change/").status_code == 200
    client.post("/admin/usage/webhookdelivery/", {"action": "redeliver_selected", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
