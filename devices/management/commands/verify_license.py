"""Verify a local license against the configured keys (SPEC section 7, docs/local-licenses.md)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devices.signing import TokenError, verify_local_license


class Command(BaseCommand):
    help = "Print the verified claims of a local license as JSON, or 'invalid: <reason>' on stderr (exit 1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", help="the local license (compact JWS), or - to read it from standard input")

    def handle(self, *args: Any, token: str, **options: Any) -> None:
        if token == "-":
            token = sys.stdin.read().strip()
        try:
            claims = verify_local_license(token)
        except TokenError as exc:
            self.stderr.write(f"invalid: {exc.reason}")
            sys.exit(1)
        self.stdout.write(json.dumps(claims, indent=2, sort_keys=True, ensure_ascii=False))
