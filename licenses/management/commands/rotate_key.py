"""``python manage.py rotate_key --license-key KEY [--grace-days N]`` (SPEC section 2): give the
key's project a new key, printed alone on standard output; the old key keeps working for N days
(default 30; 0 for a leaked key: it stops at once). ``--license-key=-abc`` and ``--license-key
-abc`` both work. Audited with the command-line user as actor."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from licenses.cli import KeyOptionMixin
from licenses.keys import DEFAULT_GRACE_DAYS, MAX_GRACE_DAYS, rotate_key
from licenses.models import Project


class Command(KeyOptionMixin, BaseCommand):
    help = "Rotate a project's license key; print the new key."

    def add_arguments(self, parser):
        parser.add_argument("--license-key", required=True, help="the project's current key (--license-key=KEY)")
        parser.add_argument(
            "--grace-days",
            type=int,
            default=DEFAULT_GRACE_DAYS,
            help=f"days the old key keeps working, 0 to {MAX_GRACE_DAYS} (default %(default)s; 0 for a leaked key)",
        )

    def handle(self, *args, license_key: str, grace_days: int, **options):
        project = Project.objects.filter(license_key=license_key).first()
        if project is None:
            raise CommandError("--license-key: no project has this license key (rotate with the current key)")
        try:
            rotate_key(project, grace_days=grace_days, actor=f"cli:{getpass.getuser()}", now=timezone.now())
        except ValueError as exc:
            raise CommandError(f"--grace-days: {exc}") from None
        self.stdout.write(project.license_key)
        self.stderr.write(f"the old key works until {project.previous_key_expires_at:%Y-%m-%dT%H:%M:%SZ}")
