"""Rate limits at the device API: the 61st request of a device in a minute is refused with 429,
code 3 and Retry-After; the per-address limit counts every device behind one address."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings

from tests import factories

pytestmark = pytest.mark.django_db
AT = factories.NOW + timedelta(seconds=15)  # 15 s into a minute: the window ends in 45 s


@pytest.fixture
def fresh_cache():
    config = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"rl-{uuid.uuid4().hex}"}
    with override_settings(CACHES={"default": config}):
        yield


@pytest.fixture
def key():
    return factories.LicenseItemFactory(per_client_device=True, quantity=1000).project.license_key


def authorize(client, key, device="dev-1", address="203.0.113.7"):
    body = {"license_key": key, "device_uuid": device, "product": "dbr", "client_type": "desktop"}
    return client.post("/api/v1/authorize", body, content_type="application/json", REMOTE_ADDR=address)


@override_settings(API_RATE_LIMIT="60/m", API_RATE_LIMIT_ADDRESS="6000/m")
def test_the_61st_request_of_a_device_in_a_minute_gets_429(client, fresh_cache, key):
    with time_machine.travel(AT, tick=False):
        statuses = [authorize(client, key).status_code for _ in range(60)]
        assert statuses == [200] * 60
        response = authorize(client, key)
        assert response.status_code == 429
        assert response.json()["error"]["code"] == 3
        assert response.json()["error"]["name"] == "RATE_LIMITED"
        assert response["Retry-After"] == "45"
        # Another device of the same project is not affected.
        assert authorize(client, key, device="dev-2").status_code == 200
    with time_machine.travel(AT + timedelta(seconds=45), tick=False):  # the next minute
        assert authorize(client, key).status_code == 200


@override_settings(API_RATE_LIMIT="0", API_RATE_LIMIT_ADDRESS="5/m")
def test_the_address_limit_counts_every_device_behind_it(client, fresh_cache, key):
    with time_machine.travel(AT, tick=False):
        assert [authorize(client, key, device=f"d{i}").status_code for i in range(5)] == [200] * 5
        response = authorize(client, key, device="d5")
        assert response.status_code == 429 and response["Retry-After"] == "45"
        assert authorize(client, key, device="d5", address="198.51.100.1").status_code == 200


@override_settings(API_RATE_LIMIT="2/m", API_RATE_LIMIT_ADDRESS="0")
def test_usage_and_release_share_the_device_limit(client, fresh_cache, key):
    with time_machine.travel(AT, tick=False):
        assert authorize(client, key).status_code == 200
        report = {
            "license_key": key,
            "device_uuid": "dev-1",
            "report_id": "r1",
            "slot_start": "2026-11-27T17:24:00Z",
            "barcode_scans": 0,
        }
        assert client.post("/api/v1/usage", report, content_type="application/json").status_code == 200
        release = {"license_key": key, "device_uuid": "dev-1"}
        response = client.post("/api/v1/release", release, content_type="application/json")
        assert response.status_code == 429 and response.json()["error"]["code"] == 3
