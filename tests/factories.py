"""Plain factory functions for tests: every argument has a sensible default."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from licenses.models import License, LicenseItem, Membership, Organization, Project

NOW = datetime(2026, 11, 27, 17, 24, tzinfo=UTC)
_seq = itertools.count(1)


def org(id: str | None = None, name: str | None = None) -> Organization:
    n = next(_seq)
    return Organization.objects.create(id=id or f"9{n:05d}", name=name or f"Org {n}")


def project(organization: Organization | None = None, name: str | None = None) -> Project:
    organization = organization or org()
    return Project.objects.create(organization=organization, name=name or f"project-{next(_seq)}")


def license(
    organization: Organization | None = None,
    license_id: str | None = None,
    starts_at: datetime | None = None,
    expires_at: datetime | None = None,
    status: str = License.ACTIVE,
) -> License:
    organization = organization or org()
    starts_at = starts_at or NOW - timedelta(days=30)
    return License.objects.create(
        license_id=license_id or f"L-TEST-{next(_seq):05d}",
        organization=organization,
        starts_at=starts_at,
        expires_at=expires_at or starts_at + timedelta(days=365),
        status=status,
    )


def item(
    option: str = "per_client_device",
    product: str = "dbr",
    project: Project | None = None,
    license: License | None = None,
    **fields,
) -> LicenseItem:
    """An item on a (new, unless given) license and project of one organization."""
    if license is None:
        license = globals()["license"](organization=project.organization if project else None)
    if project is None:
        project = globals()["project"](organization=license.organization)
    if option in ("per_page",):
        fields.setdefault("quantities", {"core": 1000})
    elif option == "per_domain":
        fields.setdefault("domain", "example.com")
    else:
        fields.setdefault("quantity", 10)
    if option == "per_server":
        fields.setdefault("edition", "server")
    if option == "per_domain" and product == "dbr":
        fields.setdefault("edition", "javascript")
    if option == "per_barcode_scan" and product == "dwt":
        fields.setdefault("addon", "barcode_reader")
    return LicenseItem.objects.create(license=license, project=project, product=product, option=option, **fields)


def user(username: str | None = None, organization: Organization | None = None, role: str = "owner", **kw):
    User = get_user_model()
    u = User.objects.create_user(username=username or f"user{next(_seq)}", password="pw-Test-12345", **kw)
    if organization is not None:
        Membership.objects.create(user=u, organization=organization, role=role)
    return u
