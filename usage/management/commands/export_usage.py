"""``python manage.py export_usage --license-key KEY --what usage|concurrency|devices
[--from DATE] [--to DATE]``: CSV to standard output (SPEC section 9)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from licenses.cli import KeyOptionMixin
from licenses.models import Project
from usage.exports import WHATS, parse_bound, write_csv


class Command(KeyOptionMixin, BaseCommand):  # --license-key -abc works too
    help = "Write a usage, concurrency or devices CSV of one project (by license key) to standard output."

    def add_arguments(self, parser):
        parser.add_argument("--license-key", required=True, help="the project's license key")
        parser.add_argument("--what", required=True, choices=WHATS)
        parser.add_argument("--from", dest="start", help="inclusive: a date (midnight UTC) or an RFC 3339 date-time")
        parser.add_argument("--to", dest="end", help="exclusive: a date (midnight UTC) or an RFC 3339 date-time")

    def handle(self, *args, license_key, what, start=None, end=None, **options):
        bounds = {}
        for option, value in (("--from", start), ("--to", end)):
            if value is not None:
                try:
                    bounds[option] = parse_bound(value)
                except ValueError as e:
                    raise CommandError(f"{option}: {e}") from e
        if "--from" in bounds and "--to" in bounds and bounds["--to"] < bounds["--from"]:
            raise CommandError("--to: must not be before --from")
        project = Project.objects.filter(license_key=license_key).first()
        if project is None:
            raise CommandError("--license-key: no project has this license key")
        out = getattr(self.stdout, "_out", sys.stdout)
        if out is sys.stdout and (out.encoding or "").lower().replace("-", "") != "utf8":
            sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]  # SPEC 9: UTF-8 whatever the locale
        write_csv(project=project, what=what, start=bounds.get("--from"), end=bounds.get("--to"), out=out)
