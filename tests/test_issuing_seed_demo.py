"""seed_demo: the demo data of `make run`, idempotent, through the real import path."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from licenses.models import AuditLog, License, LicenseItem, Membership, Organization, Project
from tests.factories import row_counts


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_it_creates_two_organizations_and_a_license_of_every_option():
    output = seed()
    assert set(Organization.objects.values_list("id", "name")) == {("216998", "Acme Corp"), ("318822", "Globex")}
    assert set(LicenseItem.objects.values_list("option", flat=True)) == {
        "per_barcode_scan",
        "per_page",
        "per_client_device",
        "per_concurrent_device",
        "per_server",
        "per_domain",
    }
    assert all(lid.startswith("L-DEMO-") for lid in License.objects.values_list("license_id", flat=True))
    # Through import_license: each license has its import in the audit log.
    assert AuditLog.objects.filter(action="license.import").count() == License.objects.count() == 8
    assert "Staff login: http://127.0.0.1:8000/admin/  user staff  password staff-demo-pass" in output
    assert "Customer login: http://127.0.0.1:8000/accounts/login/  user owner  password owner-demo-pass" in output
    assert "viewer-demo-pass" in output and "globex-demo-pass" in output


@pytest.mark.django_db
def test_it_has_a_renewal_that_shares_its_project_and_key():
    seed()
    first, renewal = (
        License.objects.get(license_id="L-DEMO-ACME-WEB-1"),
        License.objects.get(license_id="L-DEMO-ACME-WEB-2"),
    )
    assert first.expires_at == renewal.starts_at
    keys = {i.project.license_key for i in LicenseItem.objects.filter(license__in=[first, renewal])}
    assert len(keys) == 1
    assert Project.objects.get(name="acme-web").license_key in keys


@pytest.mark.django_db
def test_it_creates_the_demo_logins():
    seed()
    staff = authenticate(username="staff", password="staff-demo-pass")
    assert staff is not None and staff.is_staff and staff.is_superuser
    for username, password, organization_id, role in [
        ("owner", "owner-demo-pass", "216998", "owner"),
        ("viewer", "viewer-demo-pass", "216998", "viewer"),
        ("globex", "globex-demo-pass", "318822", "owner"),
    ]:
        user = authenticate(username=username, password=password)
        assert user is not None and not user.is_staff
        assert list(Membership.objects.filter(user=user).values_list("organization_id", "role")) == [
            (organization_id, role)
        ]


@pytest.mark.django_db
def test_it_changes_nothing_when_run_twice():
    seed()
    counts = row_counts()
    licenses = list(License.objects.order_by("id").values())
    users = list(Membership.objects.order_by("id").values("user__password", "role"))
    output = seed()
    assert row_counts() == counts
    assert list(License.objects.order_by("id").values()) == licenses
    assert list(Membership.objects.order_by("id").values("user__password", "role")) == users
    assert "nothing changed" in output


@pytest.mark.django_db
def test_it_lists_the_demo_licenses_in_the_admin(client):
    seed()
    assert client.login(username="staff", password="staff-demo-pass")
    assert "L-DEMO" in client.get("/admin/licenses/license/").content.decode()
