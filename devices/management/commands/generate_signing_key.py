"""Print a new Ed25519 signing key for SIGNING_KEYS / SIGNING_KEY_FILE (docs/local-licenses.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from devices.signing import generate_private_key_text, parse_private_key


class Command(BaseCommand):
    help = (
        "Print a new Ed25519 private key (base64url, raw 32 bytes) on stdout, and its kid on stderr. "
        "Put it first in SIGNING_KEYS (comma-separated) or SIGNING_KEY_FILE (one per line) to make it the signer."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        text = generate_private_key_text()
        kid = parse_private_key(text, where="the generated key").kid
        self.stdout.write(text)
        self.stderr.write(f"kid: {kid}")
