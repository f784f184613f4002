"""Local licenses: compact JWS signed with EdDSA over Ed25519 (SPEC section 7).

Keys come from configuration, never the database:

- ``settings.SIGNING_KEYS``: base64url raw 32-byte Ed25519 private keys; the first signs, all verify;
- or ``settings.SIGNING_KEY_FILE``: one such key per line (blank lines and ``#`` comments ignored);
- with neither, outside production, one key generated on first use into
  ``settings.DEV_SIGNING_KEY_FILE`` (mode 0600; created atomically, so two processes starting at
  once end up with the same key).

Rotation: put the new key first and keep the old one after it. New licenses carry the new key's
``kid``; licenses already issued still verify against the old key, which stays in the JWKS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALG = "EdDSA"


class TokenError(Exception):
    """A local license that does not verify; ``reason`` says why (shown to operators)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    x: str  # base64url raw public key
    kid: str  # RFC 7638 JWK thumbprint

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> SigningKey:
        private = Ed25519PrivateKey.from_private_bytes(raw)
        public = private.public_key()
        x = b64url_encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        return cls(private=private, public=public, x=x, kid=jwk_thumbprint(x))

    def public_jwk(self) -> dict:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig", "alg": ALG}


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or any(c not in _B64URL_CHARS for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over the required members, sorted."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def generate_private_key_text() -> str:
    """A new private key in the configuration format (base64url of the raw 32 bytes)."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return b64url_encode(raw)


def parse_private_key(text: str, *, where: str) -> SigningKey:
    text = text.strip()
    try:
        raw = b64url_decode(text.rstrip("="))
    except (ValueError, binascii.Error):
        raise ImproperlyConfigured(f"{where}: a signing key must be base64url of 32 raw bytes") from None
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{where}: a signing key must be 32 raw bytes, got {len(raw)}")
    return SigningKey.from_private_bytes(raw)


def _key_lines(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _ensure_dev_key_file(path: Path) -> str:
    """Create the development key file once, atomically: write a temporary file, then hard-link it
    into place, which fails if another process got there first (then that process's key wins)."""
    path = Path(path)
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_private_key_text() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_text()


_cache_lock = threading.Lock()
_cache: dict[tuple, list[SigningKey]] = {}


def _config() -> tuple:
    keys = settings.SIGNING_KEYS
    if isinstance(keys, str):
        keys = [k for k in keys.split(",")]
    return (
        tuple(k.strip() for k in keys if k.strip()),
        str(getattr(settings, "SIGNING_KEY_FILE", "") or ""),
        str(getattr(settings, "DEV_SIGNING_KEY_FILE", "") or ""),
        bool(getattr(settings, "PRODUCTION", False)),
    )


def signing_keys() -> list[SigningKey]:
    """The configured keys, the signer first. Read settings on each call (cached per configuration)
    so that tests can override them."""
    config = _config()
    keys = _cache.get(config)
    if keys is not None:
        return keys
    with _cache_lock:
        keys = _cache.get(config)
        if keys is None:
            keys = _load(*config)
            _cache[config] = keys
    return keys


def _load(env_keys: tuple, key_file: str, dev_key_file: str, production: bool) -> list[SigningKey]:
    if env_keys:
        keys = [parse_private_key(k, where=f"SIGNING_KEYS[{i}]") for i, k in enumerate(env_keys)]
    elif key_file:
        try:
            text = Path(key_file).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"SIGNING_KEY_FILE {key_file}: {exc.strerror}") from None
        keys = [parse_private_key(k, where=f"SIGNING_KEY_FILE line {i + 1}") for i, k in enumerate(_key_lines(text))]
        if not keys:
            raise ImproperlyConfigured(f"SIGNING_KEY_FILE {key_file} holds no key")
    elif production or not dev_key_file:
        raise ImproperlyConfigured("No signing key: set SIGNING_KEYS or SIGNING_KEY_FILE")
    else:
        text = _ensure_dev_key_file(Path(dev_key_file))
        keys = [parse_private_key(k, where=dev_key_file) for k in _key_lines(text)]
        if not keys:
            raise ImproperlyConfigured(f"{dev_key_file} holds no key; delete it to generate a new one")
    return keys


def _json_b64(obj: dict) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def sign_local_license(claims: dict) -> str:
    """A compact JWS of ``claims`` (the caller gives every claim, iss/sub/iat/exp as ints)."""
    key = signing_keys()[0]
    header = {"alg": ALG, "kid": key.kid, "typ": "JWT"}
    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    signature = key.private.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def _now_ts(now: datetime | int | float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def verify_local_license(token: str, *, now: datetime | int | float | None = None) -> dict:
    """The claims of a local license signed by one of the configured keys and not yet expired.

    Raises TokenError(reason) otherwise. ``now`` defaults to the clock (entry points only)."""
    if not isinstance(token, str):
        raise TokenError("not a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError("not a compact JWS (expected three dot-separated parts)")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = json.loads(b64url_decode(header_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed header") from None
    if not isinstance(header, dict):
        raise TokenError("malformed header")
    if header.get("alg") != ALG:
        raise TokenError(f"unsupported alg {header.get('alg')!r} (expected EdDSA)")
    if "crit" in header:
        raise TokenError("unsupported critical header")
    kid = header.get("kid")
    key = next((k for k in signing_keys() if k.kid == kid), None)
    if key is None:
        raise TokenError(f"unknown kid {kid!r}")
    try:
        signature = b64url_decode(signature_b64)
    except ValueError:
        raise TokenError("malformed signature") from None
    try:
        key.public.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        raise TokenError("bad signature") from None
    try:
        claims = json.loads(b64url_decode(payload_b64))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed claims") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed claims")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenError("missing or non-numeric exp")
    if _now_ts(now) >= exp:
        raise TokenError("expired")
    return claims


def jwks() -> dict:
    """The public keys that verify local licenses, every configured key (SPEC section 7)."""
    return {"keys": [key.public_jwk() for key in signing_keys()]}
