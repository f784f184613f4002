"""Idempotency-Key on the admin API's writes (SPEC section 13): the same key and body return the
first answer, another body is 409 code 2, keys are kept 24 h; and an order desk that fires the
same POST /licenses 20 times at once (PostgreSQL, real connections) issues one license."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from api.admin.idempotency import purge_idempotency_records
from api.models import IdempotencyRecord
from licenses.models import AuditLog, License, OutboxEvent
from tests import factories
from tests.admin_api import call, error, token


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen")
def test_a_retry_with_the_same_key_and_body_returns_the_first_answer(client, now):
    secret = token("write")
    body = factories.license_file()
    first = call(client, "POST", "/licenses", secret, body, **{"Idempotency-Key": "order-1"})
    again = call(client, "POST", "/licenses", secret, body, **{"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert License.objects.count() == 1 and AuditLog.objects.filter(action="license.import").count() == 1
    other = call(client, "POST", "/licenses", secret, factories.license_file(), **{"Idempotency-Key": "order-1"})
    assert other.status_code == 409 and error(other)["code"] == 2 and error(other)["name"] == "IDEMPOTENCY_CONFLICT"
    # Without a key, the same body is a second import: 409 CONFLICT for the license_id.
    assert call(client, "POST", "/licenses", secret, body).status_code == 409


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen")
def test_a_refusal_is_a_first_answer_too_and_keys_are_kept_24_hours(client, now):
    secret = token("write")
    bad = factories.license_file(items=[])
    first = call(client, "POST", "/licenses", secret, bad, **{"Idempotency-Key": "k"})
    assert first.status_code == 400
    assert call(client, "POST", "/licenses", secret, bad, **{"Idempotency-Key": "k"}).json() == first.json()
    factories.move_clock(now + timedelta(hours=24, seconds=1))
    good = factories.license_file()
    assert call(client, "POST", "/licenses", secret, good, **{"Idempotency-Key": "k"}).status_code == 201
    assert purge_idempotency_records(now=now + timedelta(hours=49)) == 1
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen")
def test_keys_are_per_token_and_every_write_takes_one(client, now, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    a, b = token("write"), token("write")
    body = {"url": "http://127.0.0.1:9/h"}
    one = call(client, "POST", "/webhooks", a, body, **{"Idempotency-Key": "same"}).json()
    two = call(client, "POST", "/webhooks", b, body, **{"Idempotency-Key": "same"}).json()
    assert one["id"] != two["id"]
    assert call(client, "POST", "/webhooks", a, body, **{"Idempotency-Key": "same"}).json() == one
    for bad in ("", "x" * 256):
        response = call(client, "POST", "/webhooks", a, body, **{"Idempotency-Key": bad})
        assert response.status_code == 400 and "Idempotency-Key" in error(response)["fields"]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_same_key_fired_20_times_at_once_issues_one_license(postgres_only):
    secret = token("write")
    barrier = threading.Barrier(20)

    def one(args):
        key, body = args
        try:
            barrier.wait(timeout=30)
            response = call(Client(), "POST", "/licenses", secret, body, **{"Idempotency-Key": key})
            return response.status_code, response.json()
        finally:
            connection.close()

    for run in range(3):  # the same race, three times over
        body = factories.license_file()
        barrier.reset()
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(one, [(f"race-{run}", body)] * 20))
        assert {status for status, _ in answers} == {201}, answers
        assert len({a["license_key"] for _, a in answers}) == 1
        assert License.objects.filter(license_id=body["license_id"]).count() == 1
        assert OutboxEvent.objects.filter(type="license.created").count() == run + 1
