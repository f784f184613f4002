"""Staff issuing in the admin: the license file upload page, renew and add-quota forms, the
status buttons, and the lists staff search (organization, product, option, status, expiry)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from licenses.models import AuditLog, License, LicenseItem, Project
from licenses.services import import_license
from tests import factories
from tests.factories import license_file, row_counts, spec_example, staff_client

IMPORT_URL = "/admin/licenses/license/import/"


@pytest.mark.django_db
def test_it_links_the_import_page_from_the_license_list():
    client, _ = staff_client()
    response = client.get("/admin/licenses/license/")
    assert IMPORT_URL in response.content.decode() and "Import license file" in response.content.decode()


@pytest.mark.django_db
def test_it_imports_an_uploaded_file_and_shows_the_contract_json():
    client, user = staff_client()
    upload = SimpleUploadedFile("license.json", json.dumps(spec_example()).encode(), "application/json")
    response = client.post(IMPORT_URL, {"file": upload})
    assert response.status_code == 200
    license = License.objects.get(license_id="L-2026-0001")
    body = response.content.decode()
    assert Project.objects.get().license_key in body
    assert f"/admin/licenses/license/{license.pk}/change/" in body
    assert LicenseItem.objects.count() == 7
    assert AuditLog.objects.get(action="license.import").actor == user


@pytest.mark.django_db
def test_it_imports_pasted_json():
    client, _ = staff_client()
    response = client.post(IMPORT_URL, {"text": json.dumps(license_file(license_id="L-PASTED"))})
    assert response.status_code == 200
    assert License.objects.filter(license_id="L-PASTED").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "file: malformed JSON"),
        (
            json.dumps(license_file(items=[{"product": "dbr", "option": "per_page", "quantities": {"core": 1}}])),
            "items[0].option: per_page applies only to dwt, not dbr",
        ),
        (
            json.dumps(license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": -1}])),
            "items[0].quantity: must be an integer &gt;= 1",
        ),
    ],
)
def test_it_shows_the_field_error_on_the_form_and_creates_nothing(text, message):
    client, _ = staff_client()
    before = row_counts()
    response = client.post(IMPORT_URL, {"text": text})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert row_counts() == before


@pytest.mark.django_db
def test_it_asks_for_a_file_or_json():
    client, _ = staff_client()
    response = client.post(IMPORT_URL, {})
    assert "Choose a license file or paste its JSON." in response.content.decode()


@pytest.mark.django_db
def test_it_keeps_the_import_page_from_non_staff():
    user = factories.UserFactory()
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(IMPORT_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post(IMPORT_URL, {"text": json.dumps(license_file())})
    assert License.objects.count() == 0


@pytest.mark.django_db
def test_it_keeps_the_import_from_staff_without_the_add_permission():
    client, _ = staff_client(superuser=False)
    assert client.post(IMPORT_URL, {"text": json.dumps(license_file())}).status_code == 403
    assert License.objects.count() == 0


@pytest.fixture
def issued(db):
    now = timezone.now()
    doc = license_file(
        project="acme-web",
        items=[{"product": "dbr", "edition": "javascript", "option": "per_client_device", "quantity": 30}],
    )
    doc["starts_at"] = (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    del doc["expires_at"]  # a year after the start
    result = import_license(doc, now=now)
    return License.objects.get(license_id=result["license_id"]), result


@pytest.mark.django_db
def test_it_renews_from_the_license_page_keeping_the_key(issued):
    license, result = issued
    client, user = staff_client()
    page = client.get(f"/admin/licenses/license/{license.pk}/change/")
    assert f"/admin/licenses/license/{license.pk}/renew/" in page.content.decode()
    form = client.get(f"/admin/licenses/license/{license.pk}/renew/")
    assert form.status_code == 200
    new_expiry = license.expires_at + timedelta(days=365)
    response = client.post(
        f"/admin/licenses/license/{license.pk}/renew/",
        {"license_id": "", "starts_at": "", "expires_at": new_expiry.strftime("%Y-%m-%d %H:%M:%S")},
    )
    assert response.status_code == 302
    new = License.objects.get(renewal_of=license)
    assert response["Location"] == f"/admin/licenses/license/{new.pk}/change/"
    assert new.starts_at == license.expires_at
    assert {i.project.license_key for i in new.items.all()} == {result["license_key"]}
    assert AuditLog.objects.get(action="license.renew").actor == user


@pytest.mark.django_db
def test_it_shows_a_renewal_error_on_the_form(issued):
    license, _ = issued
    client, _ = staff_client()
    response = client.post(
        f"/admin/licenses/license/{license.pk}/renew/",
        {"license_id": license.license_id, "expires_at": "2099-01-01 00:00:00"},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert License.objects.count() == 1


def quota_post(project, **fields) -> dict:
    data = {"project": project.pk, "edition": "", "addon": ""}
    data.update(fields)
    return data


@pytest.mark.django_db
def test_it_adds_quota_from_the_license_page(issued):
    license, result = issued
    client, user = staff_client()
    project = Project.objects.get(name="acme-web")
    url = f"/admin/licenses/license/{license.pk}/add-quota/"
    assert client.get(url).status_code == 200
    response = client.post(
        url, quota_post(project, product="dbr", option="per_client_device", edition="javascript", quantity="20")
    )
    assert response.status_code == 302
    item = LicenseItem.objects.get(quantity=20)
    assert (item.project.license_key, item.license, item.edition) == (result["license_key"], license, "javascript")
    assert AuditLog.objects.get(action="item.add_quota").actor == user


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, message",
    [
        ({"product": "dlr", "option": "per_domain", "domain": "x.com"}, "per_domain applies only to dbr"),
        ({"product": "dbr", "option": "per_client_device", "quantity": "5", "domain": "x.com"}, "does not apply"),
        ({"product": "dbr", "option": "per_client_device"}, "quantity is required"),
    ],
)
def test_it_shows_the_rule_when_added_quota_is_refused(issued, fields, message):
    license, _ = issued
    client, _ = staff_client()
    before = row_counts()
    response = client.post(
        f"/admin/licenses/license/{license.pk}/add-quota/", quota_post(Project.objects.get(name="acme-web"), **fields)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert row_counts() == before


@pytest.mark.django_db
def test_it_suspends_resumes_and_revokes_with_the_license_page_buttons(issued):
    license, _ = issued
    client, _ = staff_client()
    url = f"/admin/licenses/license/{license.pk}/status/"
    confirm = client.get(url, {"status": "revoked"})
    assert confirm.status_code == 200 and "A revoked license cannot be resumed" in confirm.content.decode()
    assert License.objects.get(pk=license.pk).status == "active"  # asking changes nothing
    for status in ("suspended", "active", "revoked"):
        assert client.post(url, {"status": status}).status_code == 302
        assert License.objects.get(pk=license.pk).status == status
    client.post(url, {"status": "active"})
    assert License.objects.get(pk=license.pk).status == "revoked"
    assert AuditLog.objects.filter(action__in=["license.suspend", "license.resume", "license.revoke"]).count() == 3


@pytest.mark.django_db
def test_it_filters_and_searches_the_license_list(db):
    now = timezone.now()
    acme = factories.OrganizationFactory(name="Acme Corp")
    globex = factories.OrganizationFactory(name="Globex")
    soon = factories.LicenseFactory(
        organization=acme, license_id="L-SOON", starts_at=now - timedelta(days=300), expires_at=now + timedelta(days=10)
    )
    late = factories.LicenseFactory(organization=globex, license_id="L-LATE", starts_at=now - timedelta(days=10))
    factories.LicenseItemFactory(per_page=True, product="dwt", license=soon)
    factories.LicenseItemFactory(per_server=True, product="dbr", license=late)
    set_status = License.objects.filter(pk=late.pk)
    set_status.update(status="suspended")
    client, _ = staff_client()

    def listed(query: str) -> set[str]:
        response = client.get(f"/admin/licenses/license/?{query}")
        assert response.status_code == 200
        return {lic.license_id for lic in response.context["cl"].result_list}

    assert listed("") == {"L-SOON", "L-LATE"}
    assert listed("expiry=30d") == {"L-SOON"}
    assert listed("items__option=per_server") == {"L-LATE"}
    assert listed("items__product=dwt") == {"L-SOON"}
    assert listed("status__exact=suspended") == {"L-LATE"}
    assert listed(f"organization__id__exact={acme.pk}") == {"L-SOON"}
    assert listed("q=Globex") == {"L-LATE"}


@pytest.mark.django_db
def test_it_shows_a_project_with_its_items_in_consumption_order_and_the_key_read_only(db):
    now = timezone.now()
    project = factories.ProjectFactory()
    organization = project.organization
    late = factories.LicenseItemFactory(
        project=project,
        license=factories.LicenseFactory(organization=organization, expires_at=now + timedelta(days=300)),
    )
    soon = factories.LicenseItemFactory(
        project=project, license=factories.LicenseFactory(organization=organization, expires_at=now + timedelta(days=3))
    )
    client, _ = staff_client()
    response = client.get(f"/admin/licenses/project/{project.pk}/change/")
    body = response.content.decode()
    assert project.license_key in body
    assert 'name="license_key"' not in body  # shown, not editable
    assert body.index(f"#{soon.pk}<") < body.index(f"#{late.pk}<")


@pytest.mark.django_db
def test_it_shows_the_memberships_of_a_user(db):
    organization = factories.OrganizationFactory(name="Acme Corp")
    owner = factories.UserFactory(username="owner-x", organization=organization, role="owner")
    client, _ = staff_client()
    response = client.get(f"/admin/auth/user/{owner.pk}/change/")
    assert response.status_code == 200
    assert "memberships-0-organization" in response.content.decode()
    assert client.get("/admin/licenses/organization/").status_code == 200
    body = client.get(f"/admin/licenses/organization/{organization.pk}/change/").content.decode()
    assert "memberships-0-user" in body and "alert_recipients-TOTAL_FORMS" in body


@pytest.mark.django_db
def test_it_lists_the_multi_tenant_domains(db):
    from licenses.models import MultiTenantDomain

    MultiTenantDomain.objects.get_or_create(domain="force.com")
    client, _ = staff_client()
    assert "force.com" in client.get("/admin/licenses/multitenantdomain/").content.decode()
