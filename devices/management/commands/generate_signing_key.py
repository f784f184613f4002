"""Print a new Ed25519 signing key for SIGNING_KEYS / SIGNING_KEY_FILE (docs/local-licenses.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from devices.signing import SigningKey, b64url_decode, generate_private_key_text


class Command(BaseCommand):
    help = (
        "Print a new Ed25519 private key (base64url, raw 32 bytes) on stdout, and its kid on stderr. "
        "Put it first in SIGNING_KEYS (comma-separated) or SIGNING_KEY_FILE (one per line) to make it the signer."
    )

    def handle(self, *args, **options) -> None:
        text = generate_private_key_text()
        kid = SigningKey.from_private_bytes(b64url_decode(text)).kid
        self.stdout.write(text)
        self.stderr.write(f"kid: {kid}")
