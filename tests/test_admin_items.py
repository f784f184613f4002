"""The admin's item editor and license list as staff use them: each option shows its own fields,
refusals in the words of the model's validation (the same as the import's), the Add quota form
keeps what was typed, licenses listed with the status a person would say, bulk revoke confirms,
and a project's items in consumption order."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from licenses.models import License, LicenseItem, Project
from licenses.services import LicenseFileError, import_license
from tests import factories
from tests.factories import license_file, row_counts, staff_client

ADD_URL = "/admin/licenses/licenseitem/add/"
OPTION_FIELDS = {
    "quantity",
    "quantities",
    "domain",
    "period",
    "activation_basis",
    "device_grace_percent",
    "quota_grace_percent",
    "dedup_interval_ms",
    "overuse_percent",
    "overuse_budget",
    "heartbeat_timeout_s",
}


def field_names(body: str) -> set[str]:
    return set(re.findall(r'name="([a-z_]+)"', body)) & OPTION_FIELDS


@pytest.mark.django_db
def test_it_shows_a_scan_item_only_the_fields_of_its_option():
    client, _ = staff_client()
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=5000)
    body = client.get(f"/admin/licenses/licenseitem/{item.pk}/change/").content.decode()
    assert field_names(body) == {"quantity", "dedup_interval_ms", "quota_grace_percent"}
    assert "per_barcode_scan: scans" in body  # the fieldset says which option it is


@pytest.mark.django_db
@pytest.mark.parametrize(
    "option, fields",
    [
        ("per_page", {"quantities", "quota_grace_percent"}),
        ("per_client_device", {"quantity", "period", "activation_basis", "device_grace_percent"}),
        ("per_concurrent_device", {"quantity", "overuse_percent", "overuse_budget"}),
        ("per_server", {"quantity", "heartbeat_timeout_s"}),
        ("per_domain", {"domain"}),
    ],
)
def test_it_shows_each_option_its_own_fields(option, fields):
    client, _ = staff_client()
    item = factories.LicenseItemFactory(option=option, product="dwt" if option == "per_page" else "dbr")
    body = client.get(f"/admin/licenses/licenseitem/{item.pk}/change/").content.decode()
    assert field_names(body) == fields


@pytest.mark.django_db
def test_it_asks_for_the_option_first_when_adding_an_item_then_saves_it():
    client, _ = staff_client()
    license = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=license.organization)
    first = client.get(ADD_URL, {"license": license.pk})
    body = first.content.decode()
    assert first.status_code == 200 and 'name="option" value="per_barcode_scan"' in body
    assert field_names(body) == set()
    assert f'name="license" value="{license.pk}"' in body  # carried to the next step
    second = client.get(ADD_URL, {"license": license.pk, "option": "per_barcode_scan"})
    assert field_names(second.content.decode()) == {"quantity", "dedup_interval_ms", "quota_grace_percent"}
    data = {
        "license": license.pk,
        "project": project.pk,
        "product": "dbr",
        "edition": "",
        "addon": "",
        "quantity": "5000",
        "dedup_interval_ms": "3000",
        "quota_grace_percent": "5",
        "position": "",
    }
    response = client.post(f"{ADD_URL}?option=per_barcode_scan", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    item = LicenseItem.objects.get()
    assert (item.option, item.quantity, item.period) == ("per_barcode_scan", 5000, "yearly")


@pytest.mark.django_db
def test_it_keeps_the_option_chosen_first_whatever_is_posted():
    client, _ = staff_client()
    license = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=license.organization)
    data = {"license": license.pk, "project": project.pk, "product": "dbr", "option": "per_domain", "quantity": "7"}
    data.update({"edition": "", "addon": "", "dedup_interval_ms": "3000", "quota_grace_percent": "5", "position": ""})
    response = client.post(f"{ADD_URL}?option=per_barcode_scan", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert LicenseItem.objects.get().option == "per_barcode_scan"


@pytest.mark.django_db
def test_it_says_in_words_that_a_quantity_must_be_at_least_one():
    client, _ = staff_client()
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=5000)
    data = {"license": item.license_id, "project": item.project_id, "product": "dbr", "edition": "", "addon": ""}
    data.update({"quantity": "0", "dedup_interval_ms": "3000", "quota_grace_percent": "5", "position": ""})
    response = client.post(f"/admin/licenses/licenseitem/{item.pk}/change/", data)
    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["quantity"] == ["must be an integer >= 1"]
    assert "Constraint" not in body and "item_quantity_positive" not in body
    assert LicenseItem.objects.get().quantity == 5000


BAD_DOMAINS = [
    ("com", "com is a public suffix, not a registrable domain"),
    ("github.io", "github.io is a public suffix, not a registrable domain"),
    ("not a host!!", "must be a host name like example.com or *.example.com"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("domain, rule", BAD_DOMAINS, ids=[d for d, _ in BAD_DOMAINS])
def test_it_refuses_a_domain_in_the_admin_with_the_words_of_the_import(domain, rule, now):
    client, _ = staff_client()
    license = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=license.organization)
    data = {"license": license.pk, "project": project.pk, "product": "dwt", "edition": "", "addon": ""}
    response = client.post(f"{ADD_URL}?option=per_domain", {**data, "domain": domain, "position": ""})
    assert response.status_code == 200
    admin_errors = response.context["adminform"].form.errors["domain"]
    assert len(admin_errors) == 1 and rule in admin_errors[0]
    assert LicenseItem.objects.count() == 0

    with pytest.raises(LicenseFileError) as e:
        import_license(license_file(items=[{"product": "dwt", "option": "per_domain", "domain": domain}]), now=now)
    assert (e.value.field, e.value.message) == ("items[0].domain", admin_errors[0])


@pytest.mark.django_db
@pytest.mark.parametrize("domain, rule", BAD_DOMAINS, ids=[d for d, _ in BAD_DOMAINS])
def test_it_refuses_a_domain_on_every_save(domain, rule):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as e:
        factories.LicenseItemFactory(per_domain=True, product="dwt", domain=domain)
    assert rule in e.value.message_dict["domain"][0]


@pytest.mark.django_db
def test_it_keeps_a_registrable_domain_of_a_private_suffix_and_lower_cases_it():
    client, _ = staff_client()
    license = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=license.organization)
    data = {"license": license.pk, "project": project.pk, "product": "dwt", "edition": "", "addon": ""}
    response = client.post(f"{ADD_URL}?option=per_domain", {**data, "domain": "*.Acme.GitHub.io", "position": ""})
    assert response.status_code == 302
    assert LicenseItem.objects.get().domain == "*.acme.github.io"


@pytest.fixture
def issued(db):
    now = timezone.now()
    doc = license_file(project="acme-web", items=[{"product": "dbr", "option": "per_client_device", "quantity": 3}])
    doc["starts_at"] = (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    del doc["expires_at"]
    result = import_license(doc, now=now)
    return License.objects.get(license_id=result["license_id"])


@pytest.mark.django_db
def test_it_keeps_what_was_typed_in_the_add_quota_form_after_an_error(issued):
    client, _ = staff_client()
    project = Project.objects.get(name="acme-web")
    data = {"project": project.pk, "product": "dbr", "option": "per_client_device", "edition": "", "addon": ""}
    data.update({"quantity": "5", "domain": "x.com", "device_grace_percent": "20"})
    response = client.post(f"/admin/licenses/license/{issued.pk}/add-quota/", data)
    body = response.content.decode()
    assert response.status_code == 200 and "domain does not apply to option per_client_device" in body
    form = response.context["form"]
    assert form["quantity"].value() == "5" and form["device_grace_percent"].value() == "20"
    assert 'value="x.com"' in body
    assert "null" not in re.search(r'<textarea name="quantities"[^>]*>([^<]*)</textarea>', body).group(1)


@pytest.mark.django_db
def test_it_lists_licenses_with_the_status_a_person_would_say(db):
    now = timezone.now()
    made = {
        "active": factories.LicenseFactory(starts_at=now - timedelta(days=1)),
        "expired": factories.LicenseFactory(starts_at=now - timedelta(days=400), expires_at=now - timedelta(days=35)),
        "not started": factories.LicenseFactory(starts_at=now + timedelta(days=3)),
        "suspended": factories.LicenseFactory(status=License.SUSPENDED, starts_at=now - timedelta(days=1)),
        "revoked": factories.LicenseFactory(status=License.REVOKED, starts_at=now - timedelta(days=400)),
    }
    client, _ = staff_client()
    body = client.get("/admin/licenses/license/").content.decode()
    for status, license in made.items():
        row = re.search(rf"<tr>.*?{re.escape(license.license_id)}.*?</tr>", body, re.S).group(0)
        assert f'<td class="field-state">{status}</td>' in row, (status, row)
    page = client.get(f"/admin/licenses/license/{made['expired'].pk}/change/").content.decode()
    assert "expired" in page
    in_term = client.get("/admin/licenses/license/?expiry=in_term").context["cl"].result_list
    assert {lic.pk for lic in in_term} == {made["active"].pk, made["suspended"].pk}


@pytest.mark.django_db
def test_it_asks_before_revoking_the_selected_licenses(db):
    first = factories.LicenseFactory(license_id="L-BULK-1")
    second = factories.LicenseFactory(license_id="L-BULK-2")
    factories.LicenseItemFactory(license=first)
    client, _ = staff_client()
    selected = {"action": "revoke_licenses", "_selected_action": [first.pk, second.pk]}
    before = row_counts()
    confirm = client.post("/admin/licenses/license/", selected)
    body = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Revoke 2 license(s)?" in body and "L-BULK-1" in body and "L-BULK-2" in body
    assert "its items serve no device, for good" in body
    assert row_counts() == before  # asking changes nothing
    assert set(License.objects.values_list("status", flat=True)) == {"active"}

    done = client.post("/admin/licenses/license/", {**selected, "post": "yes"})
    assert done.status_code == 302
    assert set(License.objects.values_list("status", flat=True)) == {"revoked"}


@pytest.mark.django_db
def test_it_shows_a_projects_items_in_the_one_consumption_order(db):
    now = timezone.now()
    project = factories.ProjectFactory()
    organization = project.organization

    def item(days: int, position: int | None = None) -> LicenseItem:
        license = factories.LicenseFactory(organization=organization, expires_at=now + timedelta(days=days))
        return factories.LicenseItemFactory(project=project, license=license, position=position)

    late, soon, placed = item(300), item(3), item(500, position=0)
    client, _ = staff_client()
    body = client.get(f"/admin/licenses/project/{project.pk}/change/").content.decode()
    shown = [int(pk) for pk in re.findall(r'href="/admin/licenses/licenseitem/(\d+)/change/"', body)]
    # Placed first, then the one that expires first: the order the device API consumes them in.
    assert shown == [placed.pk, soon.pk, late.pk] == [i.pk for i in project.items_in_order()]


@pytest.mark.django_db
def test_it_asks_for_the_option_before_adding_quota_then_shows_only_its_fields(issued):
    client, _ = staff_client()
    url = f"/admin/licenses/license/{issued.pk}/add-quota/"
    first = client.get(url).content.decode()
    assert 'name="option" value="per_barcode_scan"' in first and field_names(first) == set()
    second = client.get(url, {"option": "per_barcode_scan"}).content.decode()
    assert field_names(second) == {"quantity", "dedup_interval_ms", "quota_grace_percent"}
    project = Project.objects.get(name="acme-web")
    data = {"project": project.pk, "product": "dbr", "edition": "", "addon": "", "quantity": "2000"}
    response = client.post(f"{url}?option=per_barcode_scan", {**data, "option": "per_page"})
    assert response.status_code == 302
    added = LicenseItem.objects.get(option="per_barcode_scan")
    assert (added.quantity, added.project, added.license) == (2000, project, issued)


@pytest.mark.django_db
def test_it_refuses_an_add_on_name_in_the_admin_as_the_import_does():
    client, _ = staff_client()
    license = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=license.organization)
    data = {"license": license.pk, "project": project.pk, "product": "dwt", "edition": "", "addon": "Bar Code"}
    data.update({"quantities": '{"core": 10}', "quota_grace_percent": "5", "position": ""})
    response = client.post(f"{ADD_URL}?option=per_page", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["addon"] == [
        "must be an add-on name of lower-case letters, digits and '_'"
    ]
    assert LicenseItem.objects.count() == 0
