"""Local licenses: compact JWS signed with EdDSA over Ed25519 (SPEC section 7), by joserfc.

Keys come from configuration, never the database:

- ``settings.SIGNING_KEYS``: base64url raw 32-byte Ed25519 private keys; the first signs, all verify;
- or ``settings.SIGNING_KEY_FILE``: one such key per line (blank lines and ``#`` comments ignored);
- with neither, outside production, one key generated on first use into
  ``settings.DEV_SIGNING_KEY_FILE`` (mode 0600; created atomically, so two processes starting at
  once end up with the same key).

Rotation: put the new key first and keep the old one after it. New licenses carry the new key's
``kid`` (its RFC 7638 thumbprint); licenses already issued still verify against the old key,
which stays in the JWKS.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from joserfc import jwt
from joserfc.errors import BadSignatureError, DecodeError, InvalidPayloadError, JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import Key, KeySet, OKPKey
from joserfc.jws import JWSRegistry

ALG = "EdDSA"


class TokenError(Exception):
    """A local license that does not verify; ``reason`` says why (shown to operators)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _ContractEdDSA(EdDSAAlgorithm):
    # SPEC section 7 names the algorithm "EdDSA". RFC 9864 deprecates that name in favour of
    # "Ed25519" (the same signature) and joserfc warns on every use; the contract keeps the name.
    security_warning = ""  # joserfc warns only when this is set


class _Registry(JWSRegistry):
    """EdDSA only: a token naming any other algorithm (``none`` included) is refused."""

    algorithms = {ALG: _ContractEdDSA()}
    recommended = [ALG]


_REGISTRY = _Registry(algorithms=[ALG])


# --- base64url (RFC 7515 section 2) -------------------------------------------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class NonCanonical(ValueError):
    """Base64url whose unused trailing bits are not zero: it decodes, but is not the encoding of
    what it decodes to. Refused, so that one signature has one spelling."""


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: only the URL-safe alphabet, no ``=``, and canonical
    (re-encoding the bytes gives the text back). Raises ``NonCanonical`` or ``ValueError``."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != text:
        raise NonCanonical("not canonical base64url")
    return data


# --- keys -----------------------------------------------------------------------------------------


def _signing_key(private: Ed25519PrivateKey) -> OKPKey:
    key = OKPKey.import_key(private, {"use": "sig", "alg": ALG})
    key.ensure_kid()  # the RFC 7638 thumbprint: stable, and any client can recompute it
    return key


def generate_private_key_text() -> str:
    """A new private key in the configuration format (base64url of the raw 32 bytes)."""
    return str(OKPKey.generate_key("Ed25519", private=True).as_dict(private=True)["d"])


def parse_private_key(text: str, *, where: str) -> OKPKey:
    """A configured private key (base64url of 32 raw bytes; trailing ``=`` tolerated) as a signing
    key with its ``kid``. ``where`` names the setting in the error."""
    try:
        raw = b64url_decode(text.strip().rstrip("="))
    except ValueError:
        raise ImproperlyConfigured(f"{where}: a signing key must be base64url of 32 raw bytes") from None
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{where}: a signing key must be 32 raw bytes, got {len(raw)}")
    return _signing_key(Ed25519PrivateKey.from_private_bytes(raw))


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


_Config = tuple[tuple[str, ...], str, str, bool]
_cache_lock = threading.Lock()
_cache: dict[_Config, list[OKPKey]] = {}


def _config() -> _Config:
    keys = settings.SIGNING_KEYS
    if isinstance(keys, str):
        keys = keys.split(",")
    return (
        tuple(k.strip() for k in keys if k.strip()),
        str(getattr(settings, "SIGNING_KEY_FILE", "") or ""),
        str(getattr(settings, "DEV_SIGNING_KEY_FILE", "") or ""),
        bool(getattr(settings, "PRODUCTION", False)),
    )


def signing_keys() -> list[OKPKey]:
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


def _load(env_keys: tuple[str, ...], key_file: str, dev_key_file: str, production: bool) -> list[OKPKey]:
    if env_keys:
        return [parse_private_key(k, where=f"SIGNING_KEYS[{i}]") for i, k in enumerate(env_keys)]
    if key_file:
        try:
            text = Path(key_file).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"SIGNING_KEY_FILE {key_file}: {exc.strerror}") from None
        keys = [parse_private_key(k, where=f"SIGNING_KEY_FILE line {i + 1}") for i, k in enumerate(_key_lines(text))]
        if not keys:
            raise ImproperlyConfigured(f"SIGNING_KEY_FILE {key_file} holds no key")
        return keys
    if production or not dev_key_file:
        raise ImproperlyConfigured("No signing key: set SIGNING_KEYS or SIGNING_KEY_FILE")
    text = _ensure_dev_key_file(Path(dev_key_file))
    keys = [parse_private_key(k, where=dev_key_file) for k in _key_lines(text)]
    if not keys:
        raise ImproperlyConfigured(f"{dev_key_file} holds no key; delete it to generate a new one")
    return keys


def jwks() -> dict[str, Any]:
    """The public keys that verify local licenses, every configured key (SPEC section 7)."""
    keys: list[Key] = [*signing_keys()]
    return dict(KeySet(keys).as_dict(private=False))


# --- tokens ---------------------------------------------------------------------------------------


def sign_local_license(claims: Mapping[str, Any]) -> str:
    """The compact JWS of ``claims``, signed by the first configured key, ``kid`` in its header.
    The caller gives every claim (``iss``/``sub``/``iat``/``exp``..., times as integers)."""
    key = signing_keys()[0]
    return jwt.encode({"alg": ALG, "kid": key.kid}, dict(claims), key, algorithms=[ALG], registry=_REGISTRY)


def _segment(text: str, name: str, malformed: str) -> bytes:
    try:
        return b64url_decode(text)
    except NonCanonical:
        raise TokenError(f"{malformed}: the {name} is not canonical base64url") from None
    except ValueError:
        raise TokenError(malformed) from None


def _now_ts(now: datetime | float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def verify_local_license(token: str, *, now: datetime | float | None = None, check_exp: bool = True) -> dict[str, Any]:
    """The claims of a local license signed by one of the configured keys and, unless
    ``check_exp=False``, not expired at ``now`` (expired from the instant ``now >= exp``).

    Raises ``TokenError(reason)`` otherwise. ``now`` defaults to the clock (entry points only).
    Each segment must be canonical base64url: a signature whose unused trailing bits were
    flipped decodes to the same bytes, and is refused all the same."""
    if not isinstance(token, str):
        raise TokenError("not a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError("not a compact JWS (expected three dot-separated parts)")
    header_b64, claims_b64, signature_b64 = parts
    header_json = _segment(header_b64, "header", "malformed header")
    try:
        header = json.loads(header_json)
    except ValueError:  # UnicodeDecodeError included
        raise TokenError("malformed header") from None
    if not isinstance(header, dict):
        raise TokenError("malformed header")
    if header.get("alg") != ALG:
        raise TokenError(f"unsupported alg {header.get('alg')!r} (expected EdDSA)")
    if "crit" in header or "b64" in header:
        raise TokenError("unsupported critical header")
    kid = header.get("kid")
    key = next((k for k in signing_keys() if k.kid == kid), None)
    if key is None:
        raise TokenError(f"unknown kid {kid!r}")
    _segment(signature_b64, "signature", "bad signature")
    _segment(claims_b64, "claims", "malformed claims")
    try:
        claims = jwt.decode(".".join(parts), key, algorithms=[ALG], registry=_REGISTRY).claims
    except BadSignatureError:
        raise TokenError("bad signature") from None
    except (InvalidPayloadError, DecodeError):
        raise TokenError("malformed claims") from None
    except JoseError as exc:
        raise TokenError(f"refused: {exc}") from None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenError("missing or non-numeric exp")
    if check_exp and _now_ts(now) >= exp:
        raise TokenError("expired")
    return claims
