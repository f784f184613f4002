"""The move of the token and webhook models out of ``api`` keeps the data: a scratch database
migrated to the old state (``api.0001``) with a token, an endpoint, an event, a delivery with an
attempt, an idempotency record, and the content type and permission of the token, then migrated
forward, still has every row, joined the same way, in the new apps' tables (``licenses_apitoken``,
``licenses_webhookendpoint``, ``usage_webhookdelivery``, ``usage_webhookattempt``), and takes
new rows. Runs ``migrate`` in a subprocess on a database of its own (the suite runs without
migrations): a SQLite file, or on PostgreSQL a scratch database beside the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SCRIPT = r"""
import json
from datetime import UTC, datetime

import django

django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OLD = [("api", "0001_tokens_webhooks")]
now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
executor = MigrationExecutor(connection)
executor.migrate(OLD)
old = executor.loader.project_state(OLD).apps
model = old.get_model
org = model("licenses", "Organization").objects.create(id="216998", name="Acme")
token = model("api", "ApiToken").objects.create(
    name="crm", organization=org, scope="write", prefix="dls_abcdef", digest="d" * 64, created_by_name="ann",
    created_at=now,
)
endpoint = model("api", "WebhookEndpoint").objects.create(
    url="https://hooks.example/in", events=["license.created"], organization=org, secret="whsec_old",
    created_at=now,
)
event = model("licenses", "OutboxEvent").objects.create(
    event_id="evt_1", type="license.created", organization=org, data={"n": 1}, occurred_at=now
)
delivery = model("api", "WebhookDelivery").objects.create(
    endpoint=endpoint, event=event, attempt_at=now, created_at=now, attempts=1, last_status_code=500
)
model("api", "WebhookAttempt").objects.create(delivery=delivery, attempted_at=now, status_code=500)
model("api", "IdempotencyRecord").objects.create(token=token, key="order-1", request_digest="r", created_at=now)
ct = model("contenttypes", "ContentType").objects.create(app_label="api", model="apitoken")
model("auth", "Permission").objects.create(content_type=ct, codename="view_apitoken", name="Can view api token")

executor = MigrationExecutor(connection)
executor.migrate(executor.loader.graph.leaf_nodes())

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from api.models import IdempotencyRecord
from licenses.models import ApiToken, WebhookEndpoint
from usage.webhooks.models import WebhookAttempt, WebhookDelivery

token = ApiToken.objects.get()
endpoint = WebhookEndpoint.objects.get()
delivery = WebhookDelivery.objects.select_related("endpoint", "event").get()
record = IdempotencyRecord.objects.select_related("token").get()
later = ApiToken.objects.create(prefix="dls_later", digest="e" * 64, created_at=now)
print(json.dumps({
    "token": [token.pk, token.name, token.organization_id, token.scope, token.digest == "d" * 64],
    "endpoint": [endpoint.pk, endpoint.url, endpoint.secret, endpoint.events],
    "delivery": [delivery.endpoint.url, delivery.event.event_id, delivery.attempts, delivery.last_status_code],
    "attempts": list(WebhookAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)),
    "deliveries_of_endpoint": endpoint.deliveries.count(),
    "idempotency": [record.key, record.token.name],
    "new_token_id": later.pk,
    "tables": sorted(t for t in connection.introspection.table_names() if "apitoken" in t or "webhook" in t),
    "content_type": ContentType.objects.get(model="apitoken").app_label,
    "permission": Permission.objects.get(codename="view_apitoken").content_type.app_label,
}))
"""


def migrated_to(app: str, migration: str) -> str:
    """The start of a ``run_on`` script: Django set up, ``executor`` a MigrationExecutor, and the
    scratch database migrated to every app's latest migration but ``app``'s, at ``migration``
    (``BEFORE``); the rest of the script adds its rows, migrates forward and prints its JSON."""
    return f"""
import json

import django

django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

executor = MigrationExecutor(connection)
BEFORE = ({app!r}, {migration!r})
executor.migrate([BEFORE if app == BEFORE[0] else (app, name) for app, name in executor.loader.graph.leaf_nodes()])
"""


def run_on(url: str, script: str | None = None) -> dict:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("DJANGO_ENV", None)
    done = subprocess.run(
        [sys.executable, "-c", script or SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def scratch_database(tmp_path):
    """A database URL of this test's own, and how to drop it."""
    if connection.vendor != "postgresql":
        return f"sqlite:///{tmp_path / 'move.sqlite3'}", lambda: None
    import psycopg

    s = connection.settings_dict
    name = f"{s['NAME']}_model_move"[:63]
    params = {"host": s["HOST"] or None, "port": s["PORT"] or None, "user": s["USER"], "password": s["PASSWORD"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')

    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}", drop


def run_in_scratch_database(tmp_path, script: str) -> dict:
    """``script`` run on a scratch database (``scratch_database``, dropped afterwards): its JSON."""
    url, drop = scratch_database(tmp_path)
    try:
        return run_on(url, script)
    finally:
        drop()


def test_tokens_endpoints_and_deliveries_keep_their_rows_across_the_move(tmp_path):
    url, drop = scratch_database(tmp_path)
    try:
        out = run_on(url)
    finally:
        drop()
    assert out["token"] == [1, "crm", "216998", "write", True]
    assert out["endpoint"] == [1, "https://hooks.example/in", "whsec_old", ["license.created"]]
    assert out["delivery"] == ["https://hooks.example/in", "evt_1", 1, 500]
    assert out["attempts"] == [500] and out["deliveries_of_endpoint"] == 1
    assert out["idempotency"] == ["order-1", "crm"]
    assert out["new_token_id"] == 2  # the id sequence moved with its table
    assert out["tables"] == [
        "licenses_apitoken",
        "licenses_webhookendpoint",
        "usage_webhookattempt",
        "usage_webhookdelivery",
    ]
    assert out["content_type"] == "licenses" and out["permission"] == "licenses"
