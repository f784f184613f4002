"""python manage.py create_api_token (--staff | --organization ID) --scope read|write [--name NAME]
[--expires-in-days N]  (SPEC section 13): prints the new token alone on standard output."""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from licenses.audit import record_audit
from licenses.models import READ, WRITE, ApiToken, Organization


class Command(BaseCommand):
    help = "Create an admin API token (SPEC section 13) and print it alone on standard output; it is not shown again."

    def add_arguments(self, parser):
        whose = parser.add_mutually_exclusive_group(required=True)
        whose.add_argument("--staff", action="store_true", help="a staff token: every organization, issuing included")
        whose.add_argument("--organization", metavar="ID", help="an organization token: that organization only")
        parser.add_argument("--scope", required=True, choices=[READ, WRITE])
        parser.add_argument("--name", default="", help="a name to tell tokens apart (at most 100 characters)")
        parser.add_argument("--expires-in-days", type=int, default=None, metavar="N", help="default: never expires")

    def handle(self, *args, staff: bool, organization: str | None, scope: str, name: str, expires_in_days, **options):
        if len(name) > 100:
            raise CommandError("--name: at most 100 characters")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise CommandError("--expires-in-days: a whole number of days from 1 to 3650")
        org = None
        if organization is not None:
            org = Organization.objects.filter(pk=organization).first()
            if org is None:
                raise CommandError(f"--organization: no organization has id {organization!r}")
        now = timezone.now()
        creator = f"cli:{_os_user()}"
        token, secret = ApiToken.create_token(
            scope=scope,
            organization=org,
            name=name,
            now=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            created_by_name=creator,
        )
        record_audit(
            actor=creator,
            action="api_token.create",
            obj=token,
            before=None,
            after={"name": token.name, "scope": token.scope, "organization": token.organization_id},
            organization=org,
        )
        self.stdout.write(secret)

    def run_from_argv(self, argv):
        try:
            super().run_from_argv([*argv[:2], "--traceback", *argv[2:]])
        except CommandError as e:
            self.stderr.write(f"error: {e}")
            sys.exit(e.returncode or 1)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
