"""``python manage.py register_offline_device --license-key KEY PATH|-`` (SPEC section 12).

Reads a registration request (a file, or standard input for ``-``), registers the device on the
key's project with the rules of an authorization as of now, and prints the local license JWS on
standard output (exit 0); or ``error: <code> <NAME>: <message>`` on standard error (exit 1),
changing nothing. ``--license-key=-abc`` and ``--license-key -abc`` both work."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from devices.offline import register_offline_for_key
from devices.outcomes import CODE_NAMES, INVALID_REQUEST, Refusal
from licenses.cli import KeyOptionMixin


class Command(KeyOptionMixin, BaseCommand):
    help = "Register an offline device from its registration request; print its local license (JWS)."

    def add_arguments(self, parser):
        parser.add_argument("--license-key", required=True, help="the project's license key (--license-key=KEY)")
        parser.add_argument("path", help="the registration request (JSON), or - for standard input")

    def handle(self, *args, license_key: str, path: str, **options):
        now = timezone.now()
        try:
            raw = self._read(path)
            token = register_offline_for_key(license_key, raw, now=now, actor=f"cli:{getpass.getuser()}")
        except Refusal as refusal:
            self.stderr.write(f"error: {refusal.code} {CODE_NAMES[refusal.code]}: {refusal.message}")
            sys.exit(1)
        self.stdout.write(token)

    def _read(self, path: str) -> bytes:
        if path == "-":
            return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise Refusal(INVALID_REQUEST, f"cannot read {path}: {exc.strerror}") from None
