"""Local licenses as the device API issues them: verified by a stock JWS library against the
JWKS endpoint, with the claims of SPEC section 7."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from joserfc import jwt
from joserfc.jwk import KeySet

from devices.signing import generate_private_key_text, verify_local_license
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]
NOW = factories.NOW


@pytest.fixture(autouse=True)
def setup():
    with (
        override_settings(SIGNING_KEYS=[generate_private_key_text()], BASE_URL="https://dls.example.com"),
        time_machine.travel(NOW, tick=False),
    ):
        yield


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


def sdk_verify(client, token: str, device_uuid: str) -> dict:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    decoded = jwt.decode(token, keys, algorithms=["EdDSA"])
    assert decoded.header["alg"] == "EdDSA" and decoded.header["kid"] in {k.kid for k in keys.keys}
    jwt.JWTClaimsRegistry(exp={"essential": True}, sub={"essential": True, "value": device_uuid}).validate(
        decoded.claims
    )
    return decoded.claims


def test_an_authorized_device_gets_a_license_an_sdk_verifies_offline(client):
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=1), expires_at=NOW + timedelta(days=700))
    item = factories.LicenseItemFactory(per_client_device=True, quantity=5, period="yearly", license=lic)
    key = item.project.license_key
    response = post(
        client,
        "/api/v1/authorize",
        {"license_key": key, "device_uuid": "dev-1", "product": "dbr", "client_type": "desktop"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    claims = sdk_verify(client, body["local_license"], "dev-1")
    assert claims == {
        "iss": "https://dls.example.com",
        "sub": "dev-1",
        "iat": int(NOW.timestamp()),
        "exp": int(min(NOW + timedelta(days=365), item.license.expires_at).timestamp()),
        "license_key": key,
        "item": body["item"]["id"],
        "product": "dbr",
        "option": "per_client_device",
        "remaining": body["remaining"],
        "period_s": 365 * 86400,
    }
    assert verify_local_license(body["local_license"]) == claims


def test_a_first_use_license_runs_to_the_item_expiry(client):
    item = factories.LicenseItemFactory(
        per_client_device=True, quantity=5, period="monthly", activation_basis="first_use"
    )
    body = post(
        client,
        "/api/v1/authorize",
        {"license_key": item.project.license_key, "device_uuid": "dev-1", "product": "dbr", "client_type": "mobile"},
    ).json()
    claims = sdk_verify(client, body["local_license"], "dev-1")
    assert claims["exp"] == int(item.license.expires_at.timestamp())
    assert claims["period_s"] == 30 * 86400


def test_a_scan_license_has_no_period_and_the_usage_answer_carries_a_new_license(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    key = item.project.license_key
    post(
        client,
        "/api/v1/authorize",
        {
            "license_key": key,
            "device_uuid": "d",
            "product": "dbr",
            "client_type": "web",
            "origin": "https://a.example.com",
        },
    )
    report = {
        "license_key": key,
        "device_uuid": "d",
        "report_id": "r1",
        "slot_start": "2026-11-27T17:24:00Z",
        "barcode_scans": 7,
    }
    body = post(client, "/api/v1/usage", report).json()
    assert body["allowed"] is True
    claims = sdk_verify(client, body["local_license"], "d")
    assert "period_s" not in claims
    assert claims["option"] == "per_barcode_scan" and claims["remaining"] == {"barcode_scans": 993}
    assert claims["exp"] == int(item.license.expires_at.timestamp())
