"""Local licenses: sign, verify, rotate, and refuse anything not signed by a configured key."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from devices import signing
from devices.signing import TokenError, generate_private_key_text, jwks, sign_local_license, verify_local_license

NOW = 1_795_000_000


def claims(**extra) -> dict:
    base = {
        "iss": "http://testserver",
        "sub": "device-1",
        "iat": NOW,
        "exp": NOW + 3600,
        "license_key": "k" * 22,
        "item": "42",
        "product": "dbr",
        "option": "per_client_device",
        "remaining": {"seats": 9},
        "period_s": 31536000,
    }
    return base | extra


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


@pytest.fixture
def key_a():
    return generate_private_key_text()


@pytest.fixture
def key_b():
    return generate_private_key_text()


def test_it_round_trips_the_claims(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        token = sign_local_license(claims())
        assert verify_local_license(token, now=NOW) == claims()


def test_it_writes_the_contract_header(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        token = sign_local_license(claims())
        header = unb64(token.split(".")[0])
        assert header == {"alg": "EdDSA", "kid": jwks()["keys"][0]["kid"], "typ": "JWT"}
        assert token.count(".") == 2 and "=" not in token


def thumbprint(x: str) -> str:
    """RFC 7638 by hand: SHA-256 over the required members, sorted, no spaces."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def test_the_kid_is_the_rfc_7638_thumbprint(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        jwk = jwks()["keys"][0]
    assert jwk["kid"] == thumbprint(jwk["x"])


def test_rfc_8037_example_key_gives_its_public_key_and_thumbprint():
    # RFC 8037 appendix A.1 (d -> x) and A.3 (the thumbprint of that public key).
    key = signing.parse_private_key("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", where="test")
    assert key.as_dict(private=False)["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" == thumbprint(key.as_dict()["x"])


def test_rotation_keeps_old_licenses_valid(key_a, key_b):
    with override_settings(SIGNING_KEYS=[key_a]):
        old_token = sign_local_license(claims())
        kid_a = jwks()["keys"][0]["kid"]
    with override_settings(SIGNING_KEYS=[key_b, key_a]):
        new_token = sign_local_license(claims(sub="device-2"))
        published = [k["kid"] for k in jwks()["keys"]]
        assert len(published) == 2 and published[1] == kid_a
        assert unb64(new_token.split(".")[0])["kid"] == published[0] != kid_a
        assert verify_local_license(old_token, now=NOW)["sub"] == "device-1"
        assert verify_local_license(new_token, now=NOW)["sub"] == "device-2"
    with override_settings(SIGNING_KEYS=[key_b]):  # the old key retired
        with pytest.raises(TokenError, match="unknown kid"):
            verify_local_license(old_token, now=NOW)
        assert verify_local_license(new_token, now=NOW)


def test_a_token_from_an_unknown_key_fails(key_a, key_b):
    with override_settings(SIGNING_KEYS=[key_b]):
        foreign = sign_local_license(claims())
    with override_settings(SIGNING_KEYS=[key_a]):
        with pytest.raises(TokenError, match="unknown kid"):
            verify_local_license(foreign, now=NOW)


def test_a_token_claiming_a_known_kid_but_signed_by_another_key_fails(key_a, key_b):
    with override_settings(SIGNING_KEYS=[key_b]):
        forged = sign_local_license(claims())
    with override_settings(SIGNING_KEYS=[key_a, key_b]):
        kid_a = jwks()["keys"][0]["kid"]
        _, payload, sig = forged.split(".")
        with pytest.raises(TokenError, match="bad signature"):
            verify_local_license(f"{b64({'alg': 'EdDSA', 'kid': kid_a, 'typ': 'JWT'})}.{payload}.{sig}", now=NOW)


def test_a_tampered_token_fails(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        token = sign_local_license(claims())
        header, payload, sig = token.split(".")
        more_seats = b64(unb64(payload) | {"remaining": {"seats": 1000}})
        with pytest.raises(TokenError, match="bad signature"):
            verify_local_license(f"{header}.{more_seats}.{sig}", now=NOW)
        later = b64(unb64(payload) | {"exp": NOW + 10**8})
        with pytest.raises(TokenError, match="bad signature"):
            verify_local_license(f"{header}.{later}.{sig}", now=NOW)
        flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        with pytest.raises(TokenError, match="bad signature"):
            verify_local_license(f"{header}.{payload}.{flipped}", now=NOW)
        with pytest.raises(TokenError, match="bad signature"):
            verify_local_license(f"{header}.{payload}.{sig[:-4]}", now=NOW)


def test_alg_none_and_other_algs_fail(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        token = sign_local_license(claims())
        kid = jwks()["keys"][0]["kid"]
        _, payload, sig = token.split(".")
        for alg in ("none", "HS256", "RS256", "Ed25519", None):
            with pytest.raises(TokenError, match="alg"):
                verify_local_license(f"{b64({'alg': alg, 'kid': kid})}.{payload}.{sig}", now=NOW)
            with pytest.raises(TokenError, match="alg"):
                verify_local_license(f"{b64({'alg': alg, 'kid': kid})}.{payload}.", now=NOW)


def test_an_expired_token_fails_from_the_exact_instant(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        token = sign_local_license(claims(exp=NOW))
        assert verify_local_license(token, now=NOW - 1)["exp"] == NOW
        with pytest.raises(TokenError, match="expired"):
            verify_local_license(token, now=NOW)
        with pytest.raises(TokenError, match="expired"):
            verify_local_license(token)  # the clock: NOW is in the past
        with pytest.raises(TokenError, match="exp"):
            verify_local_license(sign_local_license({"sub": "x"}), now=NOW)
        with pytest.raises(TokenError, match="exp"):
            verify_local_license(sign_local_license({"sub": "x", "exp": "soon"}), now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", f"{b64([1])}.{b64({})}.AA", "\u00e9.\u00e9.\u00e9", None, 12],
)
def test_garbage_fails_with_a_reason(key_a, token):
    with override_settings(SIGNING_KEYS=[key_a]):
        with pytest.raises(TokenError) as err:
            verify_local_license(token, now=NOW)
    assert err.value.reason


def test_it_reads_keys_from_a_file_first_line_signs(tmp_path, key_a, key_b):
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# rotated 2026-11\n{key_b}\n\n{key_a}\n")
    with override_settings(SIGNING_KEYS=[], SIGNING_KEY_FILE=str(key_file)):
        keys = jwks()["keys"]
        assert len(keys) == 2
        token = sign_local_license(claims())
        assert unb64(token.split(".")[0])["kid"] == keys[0]["kid"]
    with override_settings(SIGNING_KEYS=[key_b]):
        assert verify_local_license(token, now=NOW)


@pytest.mark.parametrize("bad", ["not-a-key", "AAAA", "B" * 43 + "AAAA", "B" * 42])
def test_a_bad_configured_key_fails_loudly(bad):
    with override_settings(SIGNING_KEYS=[bad]):
        with pytest.raises(ImproperlyConfigured, match="SIGNING_KEYS"):
            jwks()


def test_production_refuses_to_invent_a_key(tmp_path):
    with override_settings(
        SIGNING_KEYS=[], SIGNING_KEY_FILE="", PRODUCTION=True, DEV_SIGNING_KEY_FILE=str(tmp_path / "k.txt")
    ):
        with pytest.raises(ImproperlyConfigured, match="No signing key"):
            sign_local_license(claims())
    assert not (tmp_path / "k.txt").exists()


def test_the_development_key_is_generated_once(tmp_path):
    dev_file = tmp_path / "var" / "signing-key.txt"
    with override_settings(SIGNING_KEYS=[], SIGNING_KEY_FILE="", PRODUCTION=False, DEV_SIGNING_KEY_FILE=str(dev_file)):
        token = sign_local_license(claims())
        first = jwks()
    assert stat.S_IMODE(dev_file.stat().st_mode) == 0o600
    content = dev_file.read_text()
    signing._cache.clear()  # as a new process would start
    with override_settings(SIGNING_KEYS=[], SIGNING_KEY_FILE="", PRODUCTION=False, DEV_SIGNING_KEY_FILE=str(dev_file)):
        assert jwks() == first
        assert verify_local_license(token, now=NOW)
    assert dev_file.read_text() == content
    assert [p.name for p in dev_file.parent.iterdir()] == ["signing-key.txt"]  # no temporary file left


def test_processes_starting_together_agree_on_the_development_key(tmp_path):
    dev_file = tmp_path / "signing-key.txt"
    barrier = threading.Barrier(12)
    seen: list[str] = []

    def start():
        barrier.wait()
        seen.append(signing._ensure_dev_key_file(dev_file))

    threads = [threading.Thread(target=start) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 12 and len(set(seen)) == 1 and seen[0] == dev_file.read_text()
    assert len(list(tmp_path.iterdir())) == 1


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def lenient_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_unused_bits_set(segment: str) -> str:
    """The segment with its last character's unused low bits set: a different spelling of the
    same bytes (a lenient decoder reads both alike)."""
    altered = segment[:-1] + B64URL[B64URL.index(segment[-1]) | 1]
    assert altered != segment and lenient_decode(altered) == lenient_decode(segment)
    return altered


def test_a_signature_with_a_non_canonical_last_character_fails(key_a):
    # 64 signature bytes take 86 characters; the last one carries 2 bits and 4 unused ones.
    with override_settings(SIGNING_KEYS=[key_a]):
        header, payload, sig = sign_local_license(claims()).split(".")
        assert len(sig) == 86
        with pytest.raises(TokenError, match="bad signature: the signature is not canonical base64url"):
            verify_local_license(f"{header}.{payload}.{with_unused_bits_set(sig)}", now=NOW)
        assert verify_local_license(f"{header}.{payload}.{sig}", now=NOW) == claims()


def test_non_canonical_header_and_claims_fail(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        # claims of each length modulo 3: two of the three leave unused bits to set
        tokens = [sign_local_license(claims(sub="d" * n)).split(".") for n in (1, 2, 3)]
        altered = [t for t in tokens if len(t[1]) % 4]
        assert len(altered) == 2
        for header, payload, sig in altered:
            with pytest.raises(TokenError, match="malformed claims: the claims is not canonical"):
                verify_local_license(f"{header}.{with_unused_bits_set(payload)}.{sig}", now=NOW)
        header, payload, sig = tokens[0]  # the header is 79 bytes: 106 characters, 4 unused bits
        with pytest.raises(TokenError, match="malformed header: the header is not canonical"):
            verify_local_license(f"{with_unused_bits_set(header)}.{payload}.{sig}", now=NOW)


@pytest.mark.parametrize("text", ["QQ", "QUI", "QUJD", ""])
def test_canonical_base64url_round_trips(text):
    assert base64.urlsafe_b64encode(signing.b64url_decode(text)).rstrip(b"=").decode() == text


@pytest.mark.parametrize("text", ["QR", "QUJ", "QQ==", "Q", "QU+D", "QU/D", "QU D"])
def test_non_canonical_or_foreign_base64_is_refused(text):
    with pytest.raises(ValueError):
        signing.b64url_decode(text)


def test_check_exp_false_skips_only_the_expiry(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        token = sign_local_license(claims(exp=NOW))
        assert verify_local_license(token, now=NOW + 10**6, check_exp=False) == claims(exp=NOW)
        with pytest.raises(TokenError, match="exp"):
            verify_local_license(sign_local_license({"sub": "x"}), now=NOW, check_exp=False)
        header, payload, sig = token.split(".")
        with pytest.raises(TokenError, match="bad signature"):
            flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
            verify_local_license(f"{header}.{payload}.{flipped}", check_exp=False)


def test_a_header_member_joserfc_does_not_know_is_refused(key_a):
    with override_settings(SIGNING_KEYS=[key_a]):
        kid = jwks()["keys"][0]["kid"]
        _, payload, sig = sign_local_license(claims()).split(".")
        with pytest.raises(TokenError, match="refused: .*zzz"):
            verify_local_license(f"{b64({'alg': 'EdDSA', 'kid': kid, 'zzz': 1})}.{payload}.{sig}", now=NOW)
