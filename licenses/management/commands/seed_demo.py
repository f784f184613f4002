"""python manage.py seed_demo: demo organizations, users and a license of every option.

Idempotent: what exists is left as it is (a second run changes nothing). The licenses go through
the real import path (licenses.services.import_license). For the demo only: the passwords are
printed and are public."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from licenses.models import AlertRecipient, License, Membership, Organization
from licenses.services import import_license

ACME = {"id": "216998", "name": "Acme Corp"}
GLOBEX = {"id": "318822", "name": "Globex"}

# username, password, email, organization id, role (None: staff superuser)
USERS = [
    ("staff", "staff-demo-pass", "staff@dls.example", None, None),
    ("owner", "owner-demo-pass", "owner@acme.example", ACME["id"], Membership.OWNER),
    ("viewer", "viewer-demo-pass", "viewer@acme.example", ACME["id"], Membership.VIEWER),
    ("globex", "globex-demo-pass", "it@globex.example", GLOBEX["id"], Membership.OWNER),
]


def _ts(dt: datetime) -> str:
    return dt.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def demo_license_files(now: datetime) -> list[dict]:
    """One license of each option; the Acme web devices license was renewed into its project."""
    day = timedelta(days=1)
    now = now.replace(hour=0, minute=0, second=0, microsecond=0)  # tidy dates: midnight UTC
    start = now - 200 * day
    web_devices = [
        {
            "product": "dbr",
            "edition": "javascript",
            "option": "per_client_device",
            "quantity": 30,
            "period": "yearly",
            "activation_basis": "first_authorization",
            "device_grace_percent": 10,
        }
    ]
    return [
        {  # the first term, ended 35 days ago ...
            "license_id": "L-DEMO-ACME-WEB-1",
            "organization": ACME,
            "starts_at": _ts(now - 400 * day),
            "expires_at": _ts(now - 35 * day),
            "project": "acme-web",
            "items": web_devices,
        },
        {  # ... and its renewal into the same project: same license key
            "license_id": "L-DEMO-ACME-WEB-2",
            "organization": ACME,
            "starts_at": _ts(now - 35 * day),
            "expires_at": _ts(now + 330 * day),
            "project": "acme-web",
            "items": web_devices,
        },
        {
            "license_id": "L-DEMO-ACME-SCAN",
            "organization": ACME,
            "starts_at": _ts(start),
            "expires_at": _ts(start + 365 * day),
            "project": "acme-warehouse",
            "items": [
                {
                    "product": "dbr",
                    "edition": "mobile",
                    "option": "per_barcode_scan",
                    "quantity": 100000,
                    "dedup_interval_ms": 3000,
                    "quota_grace_percent": 5,
                },
                {"product": "dwt", "addon": "barcode_reader", "option": "per_barcode_scan", "quantity": 5000},
            ],
        },
        {
            "license_id": "L-DEMO-ACME-PAGES",
            "organization": ACME,
            "starts_at": _ts(start),
            "expires_at": _ts(now + 20 * day),  # near its expiry: shows on the staff dashboard
            "project": "acme-documents",
            "items": [{"product": "dwt", "option": "per_page", "quantities": {"core": 100000, "ocr": 5000}}],
        },
        {
            "license_id": "L-DEMO-ACME-DOMAIN",
            "organization": ACME,
            "starts_at": _ts(start),
            "expires_at": _ts(start + 365 * day),
            "project": "acme-web",
            "items": [{"product": "dwt", "option": "per_domain", "domain": "*.acme.example"}],
        },
        {  # its key is shared with other sites: the insight page's anomaly flags (docs/insight.md)
            "license_id": "L-DEMO-ACME-PARTNER",
            "organization": ACME,
            "starts_at": _ts(start),
            "expires_at": _ts(start + 365 * day),
            "project": "acme-partner-web",
            "items": [
                {
                    "product": "dbr",
                    "edition": "javascript",
                    "option": "per_client_device",
                    "quantity": 100,
                    "period": "yearly",
                    "activation_basis": "first_authorization",
                }
            ],
        },
        {
            "license_id": "L-DEMO-GLOBEX-CONCURRENT",
            "organization": GLOBEX,
            "starts_at": _ts(start),
            "expires_at": _ts(start + 365 * day),
            "project": "globex-labels",
            "items": [
                {
                    "product": "dlr",
                    "edition": "desktop",
                    "option": "per_concurrent_device",
                    "quantity": 10,
                    "overuse_percent": 10,
                    "overuse_budget": 10000,
                }
            ],
        },
        {
            "license_id": "L-DEMO-GLOBEX-SERVER",
            "organization": GLOBEX,
            "starts_at": _ts(start),
            "expires_at": _ts(start + 365 * day),
            "project": "globex-backend",
            "items": [
                {
                    "product": "dbr",
                    "edition": "server",
                    "option": "per_server",
                    "quantity": 2,
                    "heartbeat_timeout_s": 600,
                }
            ],
        },
    ]


class Command(BaseCommand):
    help = "Create the demo organizations, users and licenses (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--history",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="also add a month of devices and usage (default: with DEBUG on, as in make run)",
        )

    def handle(self, *args, **options):
        now = timezone.now()
        created = []
        with transaction.atomic():
            for file in demo_license_files(now):
                if not License.objects.filter(license_id=file["license_id"]).exists():
                    import_license(file, actor="seed_demo", now=now)
                    created.append(file["license_id"])
            users = self._users()
            acme = Organization.objects.get(id=ACME["id"])
            if not AlertRecipient.objects.filter(organization=acme).exists():
                AlertRecipient.objects.create(organization=acme, email="licensing@acme.example")
        if created or users:
            self.stdout.write(f"Demo data: {len(created)} license(s), {len(users)} user(s) created.")
        else:
            self.stdout.write("Demo data already present: nothing changed.")
        # A month of devices and usage, through the device services (by name: the command lives
        # in the portal app, above devices and usage, which this app may not import).
        from django.apps import apps
        from django.core.management import call_command

        history = options["history"] if options["history"] is not None else settings.DEBUG
        if history and apps.is_installed("portal"):
            call_command("seed_demo_history", stdout=self.stdout)
        base = settings.BASE_URL  # make run sets it from HOST and PORT
        self.stdout.write(f"Staff login: {base}/admin/  user staff  password staff-demo-pass")
        self.stdout.write(f"Customer login: {base}/accounts/login/  user owner  password owner-demo-pass")
        self.stdout.write(
            f"Customer login (read-only viewer): {base}/accounts/login/  user viewer  password viewer-demo-pass"
        )
        self.stdout.write(
            f"Customer login (second organization, Globex): {base}/accounts/login/  user globex  "
            "password globex-demo-pass"
        )

    def _users(self) -> list[str]:
        User = get_user_model()
        created = []
        for username, password, email, organization_id, role in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                staff = organization_id is None
                user = User.objects.create_user(
                    username=username, password=password, email=email, is_staff=staff, is_superuser=staff
                )
                created.append(username)
            if (
                organization_id
                and role
                and not Membership.objects.filter(user=user, organization_id=organization_id).exists()
            ):
                Membership.objects.create(user=user, organization_id=organization_id, role=role)
        return created
