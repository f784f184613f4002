"""The JWKS endpoint, and a stock JWS library (joserfc) verifying local licenses against it."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidKeyIdError
from joserfc.jwk import KeySet

from devices.signing import generate_private_key_text, sign_local_license

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def claims(**extra) -> dict:
    now = int(time.time())
    return {"iss": "http://testserver", "sub": "dev-1", "iat": now, "exp": now + 600, "product": "dbr"} | extra


def fetch_jwks(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def verify_like_an_sdk(token: str, jwks: dict) -> dict:
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    jwt.JWTClaimsRegistry(exp={"essential": True}, sub={"essential": True}).validate(decoded.claims)
    return decoded.claims


def test_it_publishes_the_contract_fields(client):
    key = generate_private_key_text()
    with override_settings(SIGNING_KEYS=[key]):
        response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "max-age" in response["Cache-Control"]
    (jwk,) = response.json()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    assert "d" not in jwk  # never the private part


def test_it_needs_no_login_and_refuses_writes(client):
    with override_settings(SIGNING_KEYS=[generate_private_key_text()]):
        assert client.head("/.well-known/jwks.json").status_code == 200
        assert client.post("/.well-known/jwks.json").status_code == 405


def test_a_stock_jws_library_verifies_a_local_license_against_the_jwks(client):
    with override_settings(SIGNING_KEYS=[generate_private_key_text()]):
        token = sign_local_license(claims(remaining={"seats": 3}))
        keys = fetch_jwks(client)
    assert verify_like_an_sdk(token, keys)["remaining"] == {"seats": 3}


def test_a_stock_library_verifies_old_and_new_licenses_after_rotation(client):
    old, new = generate_private_key_text(), generate_private_key_text()
    with override_settings(SIGNING_KEYS=[old]):
        old_token = sign_local_license(claims(sub="old"))
    with override_settings(SIGNING_KEYS=[new, old]):
        new_token = sign_local_license(claims(sub="new"))
        keys = fetch_jwks(client)
    assert len(keys["keys"]) == 2
    assert verify_like_an_sdk(old_token, keys)["sub"] == "old"
    assert verify_like_an_sdk(new_token, keys)["sub"] == "new"


def test_a_stock_library_refuses_tampered_expired_and_foreign_tokens(client):
    with override_settings(SIGNING_KEYS=[generate_private_key_text()]):
        keys = fetch_jwks(client)
        token = sign_local_license(claims())
        expired = sign_local_license(claims(exp=int(time.time()) - 1))
    header, payload, signature = token.split(".")
    tampered_sig = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    with pytest.raises(BadSignatureError):
        verify_like_an_sdk(f"{header}.{payload}.{tampered_sig}", keys)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]  # unused bits set
    with pytest.raises(BadSignatureError):
        verify_like_an_sdk(f"{header}.{payload}.{same_bytes}", keys)
    with pytest.raises(ExpiredTokenError):
        verify_like_an_sdk(expired, keys)
    with override_settings(SIGNING_KEYS=[generate_private_key_text()]):
        foreign = sign_local_license(claims())
    with pytest.raises(InvalidKeyIdError):
        verify_like_an_sdk(foreign, keys)
