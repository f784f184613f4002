"""Verifying a local license in the SDK (SPEC section 7), with the server's published keys
(``/.well-known/jwks.json``) and joserfc: EdDSA signature, ``exp``, and for web devices the
``origin`` claim, so that a token copied to another origin is refused. Imports nothing of the
server."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

DEFAULT_PORTS = {"http": 80, "https": 443}


class LocalLicenseRefused(Exception):
    """The token does not verify, has expired, or was issued to another origin."""


def normalize_origin(origin: str) -> str:
    """scheme://host[:port], lower-cased, default port dropped, IDN hosts in punycode: how the
    server writes a web device's origin (SPEC section 2)."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not scheme or not host:
        raise ValueError(f"not an origin: {origin!r}")
    if ":" in host:
        host = f"[{host.lower()}]"
    else:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    port = parts.port
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


class LocalLicenseVerifier:
    """Checks local licenses against a key set (fetched once from the server, then kept: an SDK
    that holds a valid token works offline)."""

    def __init__(self, jwks: KeySetSerialization, *, origin: str | None = None) -> None:
        self.keys = KeySet.import_key_set(jwks)
        self.origin = normalize_origin(origin) if origin else None

    @classmethod
    def fetch(cls, base_url: str, *, origin: str | None = None, http: httpx.Client | None = None):
        client = http or httpx.Client(timeout=30.0)
        response = client.get(base_url.rstrip("/") + "/.well-known/jwks.json")
        response.raise_for_status()
        return cls(response.json(), origin=origin)

    def verify(self, token: str, *, now: float | None = None) -> dict:
        """The token's claims, or ``LocalLicenseRefused``."""
        try:
            compact = jws.deserialize_compact(token, self.keys, algorithms=["EdDSA"])
        except (JoseError, ValueError) as exc:
            raise LocalLicenseRefused(f"the signature does not verify: {exc}") from None
        claims = json.loads(compact.payload)
        now = time.time() if now is None else now
        if not isinstance(claims.get("exp"), int) or now >= claims["exp"]:
            raise LocalLicenseRefused("the local license has expired")
        if "origin" in claims or self.origin is not None:
            if self.origin is None:
                raise LocalLicenseRefused("a web local license is only valid in a browser page of its origin")
            if claims.get("origin") != self.origin:
                raise LocalLicenseRefused(
                    f"the local license was issued to {claims.get('origin')}, not to this origin {self.origin}"
                )
        return claims
