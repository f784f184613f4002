"""verify_license and generate_signing_key, the operators' tools for local licenses."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.management import call_command
from django.test import override_settings

from devices.signing import b64url_decode, generate_private_key_text, jwks, parse_private_key, sign_local_license

FAR = 4_000_000_000


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def _tampered(token: str) -> str:
    """``token`` with one character in the middle of its signature changed: six signature bits,
    always. Replacing its last three characters by ``AAA`` once left a token valid in CI: a
    signature that already ends in ``AAA`` (about one in 65,536) is left as it was."""
    head, signature = token.rsplit(".", 1)
    i = len(signature) // 2
    return f"{head}.{signature[:i]}{'B' if signature[i] == 'A' else 'A'}{signature[i + 1 :]}"


@pytest.fixture
def keys():
    with override_settings(SIGNING_KEYS=[generate_private_key_text()]):
        yield


def test_verify_license_prints_the_claims_as_json(keys):
    token = sign_local_license({"sub": "dev-1", "exp": FAR, "remaining": {"seats": 2}, "product": "dbr"})
    code, out, err = run("verify_license", token)
    assert code == 0 and err == ""
    assert json.loads(out) == {"sub": "dev-1", "exp": FAR, "remaining": {"seats": 2}, "product": "dbr"}


@pytest.mark.parametrize(
    "make_token, reason",
    [
        (lambda: sign_local_license({"sub": "d", "exp": 1000}), "invalid: expired"),
        (lambda: "not.a-token", "invalid: not a compact JWS"),
        (lambda: _tampered(sign_local_license({"sub": "d", "exp": FAR})), "invalid: bad signature"),
    ],
)
def test_verify_license_says_why_and_exits_non_zero(keys, make_token, reason):
    code, out, err = run("verify_license", make_token())
    assert code == 1 and out == ""
    assert err.startswith(reason)


def test_verify_license_reads_standard_input(keys, monkeypatch):
    token = sign_local_license({"sub": "dev-1", "exp": FAR})
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    code, out, _ = run("verify_license", "-")
    assert code == 0 and json.loads(out)["sub"] == "dev-1"


def test_verify_license_refuses_a_token_of_a_retired_key(keys):
    token = sign_local_license({"sub": "d", "exp": FAR})
    with override_settings(SIGNING_KEYS=[generate_private_key_text()]):
        code, _, err = run("verify_license", token)
    assert code == 1 and err.startswith("invalid: unknown kid")


def test_generate_signing_key_prints_a_usable_new_key():
    code, out, err = run("generate_signing_key")
    key = out.strip()
    assert code == 0 and len(b64url_decode(key)) == 32
    assert err.strip() == f"kid: {parse_private_key(key, where='test').kid}"
    with override_settings(SIGNING_KEYS=[key]):
        assert jwks()["keys"][0]["kid"] == err.strip().removeprefix("kid: ")
    assert run("generate_signing_key")[1].strip() != key


def test_verify_license_refuses_a_signature_spelled_non_canonically(keys):
    token = sign_local_license({"sub": "d", "exp": FAR})
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    header, payload, sig = token.split(".")
    altered = sig[:-1] + alphabet[alphabet.index(sig[-1]) | 1]  # the last character's unused bits
    assert altered != sig and base64.urlsafe_b64decode(altered + "==") == base64.urlsafe_b64decode(sig + "==")
    code, out, err = run("verify_license", f"{header}.{payload}.{altered}")
    assert code == 1 and out == ""
    assert err.strip() == "invalid: bad signature: the signature is not canonical base64url"
    assert run("verify_license", token)[0] == 0
