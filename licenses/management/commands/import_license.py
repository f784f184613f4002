"""python manage.py import_license PATH|-  (SPEC section 5): all or nothing, JSON on stdout."""

from __future__ import annotations

import getpass
import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from licenses.services import LicenseFileError, import_license


class Command(BaseCommand):
    help = "Import a license file (JSON, SPEC section 5); '-' reads standard input. Prints the result as JSON."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the license file, or - for standard input")

    def handle(self, *args, path: str, **options):
        try:
            if path == "-":
                data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise CommandError(f"file: cannot read {path}: {e.strerror}") from None
        try:
            result = import_license(data, actor=f"cli:{_os_user()}", now=timezone.now())
        except LicenseFileError as e:
            raise CommandError(f"{e.field}: {e.message}") from None
        self.stdout.write(json.dumps(result, indent=2))

    def run_from_argv(self, argv):
        # Django prints "CommandError: ..."; the contract's message is "error: <field>: <rule>".
        try:
            super().run_from_argv([*argv[:2], "--traceback", *argv[2:]])
        except CommandError as e:
            self.stderr.write(f"error: {e}")
            sys.exit(e.returncode or 1)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: still say it came from the command line
        return "unknown"
