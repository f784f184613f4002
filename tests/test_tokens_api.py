"""Local licenses as the device API issues them: verified by a stock JWS library against the
JWKS endpoint, with the claims of SPEC section 7."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from joserfc import jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet

from devices.services import local_license
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


def web_body(key: str, origin: str, uuid: str = "w-1") -> dict:
    return {"license_key": key, "device_uuid": uuid, "product": "dbr", "client_type": "web", "origin": origin}


def test_a_web_device_s_license_names_its_normalized_origin(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    key = item.project.license_key
    body = post(client, "/api/v1/authorize", web_body(key, "HTTPS://Shop.Example.COM:443")).json()
    assert sdk_verify(client, body["local_license"], "w-1")["origin"] == "https://shop.example.com"
    report = {"license_key": key, "device_uuid": "w-1", "report_id": "r1", "slot_start": "2026-11-27T17:24:00Z"}
    answer = post(client, "/api/v1/usage", report | {"barcode_scans": 1}).json()
    assert sdk_verify(client, answer["local_license"], "w-1")["origin"] == "https://shop.example.com"
    other_port = post(client, "/api/v1/authorize", web_body(key, "https://shop.example.com:8443", "w-2")).json()
    assert sdk_verify(client, other_port["local_license"], "w-2")["origin"] == "https://shop.example.com:8443"


@pytest.mark.parametrize("client_type", ["desktop", "mobile", "embedded"])
def test_a_license_of_a_device_that_is_not_web_has_no_origin(client, client_type):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    request = {"license_key": item.project.license_key, "device_uuid": "d-1", "product": "dbr"}
    body = post(client, "/api/v1/authorize", request | {"client_type": client_type}).json()
    claims = sdk_verify(client, body["local_license"], "d-1")
    assert "origin" not in claims and "offline" not in claims


def test_an_sdk_refuses_a_web_license_copied_to_another_origin(client):
    # What the reference client does with the JWKS it fetched: the origin claim must be its own.
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    token = post(client, "/api/v1/authorize", web_body(item.project.license_key, "https://a.example.com")).json()[
        "local_license"
    ]
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    claims = jwt.decode(token, keys, algorithms=["EdDSA"]).claims

    def on(origin: str) -> None:
        jwt.JWTClaimsRegistry(
            exp={"essential": True},
            sub={"essential": True, "value": "w-1"},
            origin={"essential": True, "value": origin},
        ).validate(claims)

    on("https://a.example.com")
    for elsewhere in ("https://b.example.com", "http://a.example.com", "https://a.example.com:8443"):
        with pytest.raises(InvalidClaimError, match="origin"):
            on(elsewhere)


@pytest.mark.parametrize("basis", ["activation", "first_use"])
def test_an_offline_license_says_so_and_runs_to_the_seat_s_end(basis):
    item = factories.LicenseItemFactory(per_client_device=True, period="monthly", activation_basis=basis)
    device = factories.DeviceFactory(item=item, active_until=NOW + timedelta(days=30))
    args = {"project": item.project, "device": device, "item": item, "remaining": {"seats": 9}, "now": NOW}
    offline = verify_local_license(local_license(**args, offline=True))
    assert offline["offline"] is True
    assert offline["exp"] == int((NOW + timedelta(days=30)).timestamp())
    online = verify_local_license(local_license(**args))
    assert "offline" not in online
    online_end = item.license.expires_at if basis == "first_use" else NOW + timedelta(days=30)
    assert online["exp"] == int(online_end.timestamp())
