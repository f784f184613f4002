"""The order desk's script of docs/admin-api.md, run as written against a live server: it issues,
renews, adds quota, suspends and revokes through the admin API; then the rest of SPEC 14's
changes happen (reminders, alerts, refusals, release, key rotation, expiry) and a real receiver
on 127.0.0.1 gets every event type, each with a valid Standard Webhooks signature."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from licenses.models import License, Project
from tests import factories
from tests.admin_api import token
from tests.test_webhooks_delivery import Receiver
from tests.test_webhooks_events import SPEC_EVENT_TYPES
from usage import jobs
from usage.webhooks.dispatch import run_webhooks

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_rate_limits")]
DOC = Path(__file__).resolve().parent.parent / "docs" / "admin-api.md"


def order_desk_script() -> str:
    (code,) = re.findall(r"```python order_desk\.py\n(.*?)```", DOC.read_text(), flags=re.S)
    return code


def test_the_documented_order_desk_and_a_receiver_of_every_event(live_server, settings, monkeypatch, capsys):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    rx = Receiver()
    try:
        secret = token("write", name="order desk")
        base = f"{live_server.url}/api/admin/v1"
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"})
        hook = api.post("/webhooks", json={"url": rx.url}).json()
        rx.secrets.append(hook["secret"])

        monkeypatch.setenv("DLS_ADMIN_API", base)
        monkeypatch.setenv("DLS_TOKEN", secret)
        exec(compile(order_desk_script(), str(DOC), "exec"), {"__name__": "order_desk"})
        printed = capsys.readouterr().out
        assert "issued L-1001" in printed and "revoke revoked" in printed
        assert License.objects.get(license_id="L-1003").status == "revoked"
        project = Project.objects.get(name="acme-web")
        assert {lic.license_id for lic in License.objects.filter(items__project=project)} == {
            "L-1001",
            "L-1001-R1",
            "L-1003",
        }

        now = timezone.now()
        run_webhooks(now=now, clock=timezone.now)  # the beat has been running: the refusal watermark is set
        device_api = Client()
        for n in range(19):  # 18 after a release: 60 % of 30 seats
            assert factories.authorize(device_api, project, f"d-{n}", edition="javascript", client_type="web", origin="https://a.example").status_code == 200  # fmt: skip
        assert factories.authorize(device_api, project, "x-1", product="dlr").status_code == 403  # refused
        assert api.post(f"/projects/{project.pk}/devices/d-0/release").status_code == 200
        assert api.post(f"/projects/{project.pk}/rotate-key", json={"grace_days": 1}).status_code == 200
        jobs.send_usage_alerts(now=now)
        jobs.send_renewal_reminders(now=datetime(2027, 11, 1, 12, tzinfo=UTC))  # 30 days before L-1001 ends
        jobs.expire_idle_devices(now=datetime(2027, 12, 2, tzinfo=UTC))
        for _ in range(3):
            run_webhooks(now=timezone.now() + timedelta(minutes=11), clock=timezone.now)

        seen = {s["body"]["type"] for s in rx.seen}
        assert seen >= SPEC_EVENT_TYPES, SPEC_EVENT_TYPES - seen
        assert all(s["verified"][hook["secret"]] for s in rx.seen)
        by_type = {s["body"]["type"]: s["body"]["data"] for s in rx.seen}
        assert by_type["devices.expired"]["count"] == 18
        assert by_type["usage.threshold_crossed"]["metric"] == "seats"
        assert by_type["device.released"]["by"] == "token"
        assert by_type["license.expiring"]["days_left"] == 30
    finally:
        rx.close()
