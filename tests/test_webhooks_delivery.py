"""Webhook delivery (SPEC section 14) against a real HTTP receiver on 127.0.0.1 that verifies
every request with the ``standardwebhooks`` package, as a customer's receiver would: retries
with the same webhook-id, the backoff, the attempt log, secret rotation, disabling after 5 days
of failures with an email to staff, the SSRF guard, and a worker killed mid-delivery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from licenses.events import emit
from licenses.models import WebhookEndpoint
from licenses.services import set_license_status
from tests import factories
from usage.webhooks import delivery as webhooks
from usage.webhooks.delivery import BACKOFF, deliver_due
from usage.webhooks.dispatch import dispatch_events, run_webhooks
from usage.webhooks.endpoints import create_endpoint, redeliver, update_endpoint
from usage.webhooks.guard import url_problem
from usage.webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver on 127.0.0.1: verifies each request with ``secrets`` (any one may
    match), answers ``statuses`` in turn (then 200), and records what it saw."""

    def __init__(self, statuses=(), body=b"ok", delay=0.0):
        self.statuses = list(statuses)
        self.secrets: list[str] = []
        self.seen: list[dict] = []
        self.delay, self.body = delay, body
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = {}
                for secret in receiver.secrets:
                    try:
                        Webhook(secret).verify(data, headers)
                        verified[secret] = True
                    except WebhookVerificationError:
                        verified[secret] = False
                receiver.seen.append({"headers": headers, "body": json.loads(data), "verified": verified})
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dls"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def endpoint_for(receiver, *, organization=None, events=None, now=None):
    endpoint, secret = create_endpoint(
        url=receiver.url, events=events, organization=organization, created_by_name="test", now=now or timezone.now()
    )
    receiver.secrets.append(secret)
    return endpoint, secret


def test_a_receiver_answering_500_twice_sees_the_same_webhook_id_three_times_all_signed(receiver):
    rx = receiver(statuses=[500, 500])
    now = timezone.now()
    lic = factories.LicenseFactory()
    endpoint, secret = endpoint_for(rx, now=now)
    set_license_status(license=lic, status="suspended", actor="test", now=now)
    clock = timezone.now  # the signing time is the wall clock: the receiver checks it (5 min)

    assert run_webhooks(now=now, clock=clock)["failed_attempts"] == 1
    assert run_webhooks(now=now + timedelta(seconds=4), clock=clock)["failed_attempts"] == 0  # not due yet
    assert run_webhooks(now=now + BACKOFF[0], clock=clock)["failed_attempts"] == 1
    assert run_webhooks(now=now + BACKOFF[0] + BACKOFF[1], clock=clock)["delivered"] == 1
    assert run_webhooks(now=now + timedelta(days=1), clock=clock) == {
        "refused_events": 0,
        "dispatched": 0,
        "delivered": 0,
        "failed_attempts": 0,
    }

    ids = [s["headers"]["webhook-id"] for s in rx.seen]
    assert len(ids) == 3 and len(set(ids)) == 1 and ids[0].startswith("evt_")
    assert all(s["verified"][secret] for s in rx.seen)
    assert all(s["headers"]["content-type"] == "application/json" for s in rx.seen)
    deduplicated = {s["headers"]["webhook-id"]: s["body"] for s in rx.seen}
    (event,) = deduplicated.values()
    assert event["type"] == "license.suspended" and event["data"]["license_id"] == lic.license_id
    assert set(event) == {"type", "timestamp", "data"} and event["timestamp"].endswith("Z")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 3 and delivery.last_status_code == 200
    log = list(WebhookAttempt.objects.order_by("id").values_list("status_code", flat=True))
    assert log == [500, 500, 200]
    assert WebhookEndpoint.objects.get().failing_since is None  # a success clears it


def test_a_wrong_secret_does_not_verify(receiver):
    rx = receiver()
    endpoint, secret = endpoint_for(rx)
    rx.secrets.append("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
    emit("license.created", {"x": 1}, organization=None, now=timezone.now())
    run_webhooks(now=timezone.now(), clock=timezone.now)
    (seen,) = rx.seen
    assert seen["verified"][secret] is True and list(seen["verified"].values()) == [True, False]


def test_a_rotated_secret_signs_with_both_for_24_hours(receiver):
    rx = receiver()
    now = timezone.now()
    endpoint, old = endpoint_for(rx, now=now)
    new = update_endpoint(endpoint, now=now, rotate_secret=True)
    rx.secrets.append(new)
    emit("license.created", {"n": 1}, organization=None, now=now)
    run_webhooks(now=now, clock=timezone.now)
    first = rx.seen[-1]
    assert first["verified"] == {old: True, new: True}
    assert len(first["headers"]["webhook-signature"].split(" ")) == 2
    # 24 h later only the new secret signs (signed at that moment: checked without the receiver's clock).
    endpoint.refresh_from_db()
    later = now + timedelta(hours=24, seconds=1)
    headers = webhooks.signed_headers(endpoint, "evt_x", "{}", at=later)
    assert headers["webhook-signature"] == Webhook(new).sign("evt_x", later, "{}")


def test_the_backoff_then_failed_and_every_attempt_logged(receiver, monkeypatch):
    now = timezone.now()
    endpoint, _ = endpoint_for(receiver(), now=now)
    calls = []

    def failing(url, body, headers):
        calls.append(headers["webhook-id"])
        return httpx.Response(503, content=b"x" * 5000)

    monkeypatch.setattr(webhooks, "post", failing)
    emit("license.created", {"n": 1}, organization=None, now=now)
    dispatch_events(now=now)
    at = now
    for step in (timedelta(0), *BACKOFF):
        at += step
        assert deliver_due(now=at - timedelta(milliseconds=1))["failed_attempts"] == 0  # not a moment early
        assert deliver_due(now=at)["failed_attempts"] == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 8 == len(calls)
    assert deliver_due(now=at + timedelta(days=1))["failed_attempts"] == 0
    attempts = list(WebhookAttempt.objects.all())
    assert len(attempts) == 8 and {a.status_code for a in attempts} == {503}
    assert {len(a.response_excerpt) for a in attempts} == {1024}  # the first 1 KiB
    # Redelivery starts a fresh series.
    redeliver(delivery, now=at + timedelta(days=1))
    assert deliver_due(now=at + timedelta(days=1))["failed_attempts"] == 1


def test_a_timeout_or_refused_connection_is_a_failed_attempt(receiver, monkeypatch):
    now = timezone.now()
    endpoint, _ = endpoint_for(receiver(), now=now)

    def slow(url, body, headers):
        raise httpx.ReadTimeout("timed out")

    monkeypatch.setattr(webhooks, "post", slow)
    emit("license.created", {}, organization=None, now=now)
    run_webhooks(now=now)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "10 s" in attempt.error
    assert webhooks.TIMEOUT_S == 10


def test_an_endpoint_failing_every_delivery_for_5_days_is_disabled_and_staff_emailed(
    receiver, monkeypatch, django_capture_on_commit_callbacks
):
    factories.UserFactory(is_staff=True, email="ops@vendor.example")
    now = timezone.now()
    endpoint, _ = endpoint_for(receiver(), now=now)
    monkeypatch.setattr(webhooks, "post", lambda url, body, headers: httpx.Response(500))
    for hour in range(0, 5 * 24 + 1, 6):
        at = now + timedelta(hours=hour)
        emit("license.created", {"hour": hour}, organization=None, now=at)
        with django_capture_on_commit_callbacks(execute=True):
            run_webhooks(now=at)
        endpoint.refresh_from_db()
        if hour < 5 * 24:
            assert endpoint.enabled, hour
    assert not endpoint.enabled and "5 days" in endpoint.disabled_reason
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@vendor.example"]
    assert endpoint.url in mail.outbox[0].subject
    # Disabled: nothing more is attempted, and new events get no delivery.
    before = WebhookAttempt.objects.count()
    emit("license.created", {}, organization=None, now=now + timedelta(days=6))
    run_webhooks(now=now + timedelta(days=6))
    assert WebhookAttempt.objects.count() == before


def test_one_success_in_between_keeps_the_endpoint(receiver, monkeypatch):
    now = timezone.now()
    endpoint, _ = endpoint_for(receiver(), now=now)
    calls = []

    def answer(url, body, headers):
        calls.append(url)
        return httpx.Response(200 if len(calls) == 11 else 500)

    monkeypatch.setattr(webhooks, "post", answer)
    for hour in range(0, 6 * 24, 6):
        at = now + timedelta(hours=hour)
        emit("license.created", {"hour": hour}, organization=None, now=at)
        run_webhooks(now=at)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None


def test_the_ssrf_guard_blocks_private_targets_at_delivery_too(receiver, settings):
    rx = receiver()
    now = timezone.now()
    endpoint, _ = endpoint_for(rx, now=now)
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False  # e.g. the setting was turned off since
    emit("license.created", {}, organization=None, now=now)
    run_webhooks(now=now)
    assert rx.seen == []
    assert "loopback, private or link-local" in WebhookAttempt.objects.get().error
    for url in ("http://[::1]/x", "http://127.0.0.2/x", "http://[::ffff:10.0.0.1]/x", "http://0.0.0.0/x"):
        assert url_problem(url), url


def test_production_accepts_only_https(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.PRODUCTION = True
    assert url_problem("http://127.0.0.1/x") == "must be an https URL"
    assert url_problem("https://127.0.0.1/x") is None
    settings.PRODUCTION = False
    assert url_problem("http://127.0.0.1/x") is None


def test_redirects_are_not_followed(receiver):
    rx = receiver(statuses=[302])
    endpoint, _ = endpoint_for(rx)
    emit("license.created", {}, organization=None, now=timezone.now())
    run_webhooks(now=timezone.now(), clock=timezone.now)
    assert len(rx.seen) == 1 and WebhookDelivery.objects.get().status == "pending"


def test_a_worker_that_dies_mid_delivery_loses_no_event(receiver, monkeypatch):
    """The worker is gone between claiming the delivery and recording the answer (a BaseException
    that no handler catches stands for SIGKILL); the lease lapses and the next run delivers it."""
    rx = receiver()
    now = timezone.now()
    endpoint, secret = endpoint_for(rx, now=now)
    emit("license.created", {"n": 1}, organization=None, now=now)
    real_post = webhooks.post

    class Killed(BaseException):
        pass

    def dies(url, body, headers):
        raise Killed

    monkeypatch.setattr(webhooks, "post", dies)
    with pytest.raises(Killed):
        run_webhooks(now=now)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.lease_until == now + webhooks.LEASE
    monkeypatch.setattr(webhooks, "post", real_post)
    assert deliver_due(now=now + timedelta(seconds=30), clock=timezone.now)["delivered"] == 0  # still leased
    assert deliver_due(now=now + webhooks.LEASE, clock=timezone.now)["delivered"] == 1
    assert len(rx.seen) == 1 and rx.seen[0]["verified"][secret]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_killed_mid_delivery_loses_no_event(receiver):
    """The same with a real process: a worker runs the delivery step against a receiver that
    hangs, is killed with SIGKILL while the request is in flight, and the next run delivers."""
    rx = receiver(delay=30)
    now = timezone.now()
    endpoint, secret = endpoint_for(rx, now=now)
    emit("license.created", {"n": 1}, organization=None, now=now)
    dispatch_events(now=now)
    settings_db = connection.settings_dict
    if connection.vendor == "postgresql":
        url = f"postgres://{settings_db['USER']}@{settings_db['HOST']}:{settings_db['PORT']}/{settings_db['NAME']}"
    else:
        url = f"sqlite:///{settings_db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "WEBHOOK_ALLOW_PRIVATE_HOSTS": "1"}
    code = "import django; django.setup(); from django.utils import timezone; from usage.webhooks.delivery import deliver_due; deliver_due(now=timezone.now())"
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not rx.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rx.seen, "the worker never reached the receiver"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.lease_until is not None and delivery.attempts == 0
    rx.delay = 0
    assert deliver_due(now=delivery.lease_until, clock=timezone.now)["delivered"] == 1
    ids = {s["headers"]["webhook-id"] for s in rx.seen}
    assert len(rx.seen) == 2 and len(ids) == 1 and rx.seen[-1]["verified"][secret]


def test_a_2xx_after_more_than_10_seconds_is_a_failed_attempt(receiver, monkeypatch):
    now = timezone.now()
    endpoint_for(receiver(), now=now)
    monkeypatch.setattr(webhooks, "post", lambda url, body, headers: httpx.Response(200))
    ticks = iter([100.0, 110.5])
    monkeypatch.setattr(webhooks, "_monotonic", lambda: next(ticks))
    emit("license.created", {}, organization=None, now=now)
    assert run_webhooks(now=now)["failed_attempts"] == 1
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200 and attempt.latency_ms == 10500 and "after 10 s" in attempt.error
    assert WebhookDelivery.objects.get().status == "pending"
