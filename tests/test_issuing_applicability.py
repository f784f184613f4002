"""The applicability table of SPEC section 3, cell by cell, through the license file import and
through the staff admin's item forms: each allowed combination saves, each forbidden one is
refused with the message of its rule."""

from __future__ import annotations

import itertools

import pytest

from licenses.models import License, LicenseItem, Project
from licenses.services import LicenseFileError, import_license
from tests import factories
from tests.factories import item_for, license_file, row_counts, staff_client

# (product, option, edition, addon, None if allowed else a fragment of the refusal message)
CELLS = [
    # per_barcode_scan: dbr yes; dwt only for its Barcode Reader add-on; dlr no
    ("dbr", "per_barcode_scan", "", "", None),
    ("dbr", "per_barcode_scan", "mobile", "", None),
    ("dwt", "per_barcode_scan", "", "barcode_reader", None),
    ("dwt", "per_barcode_scan", "", "", "per_barcode_scan applies to dwt only for its Barcode Reader add-on"),
    ("dwt", "per_barcode_scan", "", "ocr_pro", "per_barcode_scan applies to dwt only for its Barcode Reader add-on"),
    ("dlr", "per_barcode_scan", "", "", "not to dlr"),
    # per_page: dwt only (core, webcam, pdfr, ocr, add-ons other than Barcode Reader)
    ("dbr", "per_page", "", "", "per_page applies only to dwt, not dbr"),
    ("dwt", "per_page", "", "", None),
    ("dwt", "per_page", "desktop", "", None),
    ("dwt", "per_page", "", "ocr_pro", None),
    ("dwt", "per_page", "", "barcode_reader", "Barcode Reader add-on is counted per_barcode_scan, not per_page"),
    ("dlr", "per_page", "", "", "per_page applies only to dwt, not dlr"),
    # per_client_device: every product
    ("dbr", "per_client_device", "", "", None),
    ("dbr", "per_client_device", "javascript", "", None),
    ("dwt", "per_client_device", "", "", None),
    ("dlr", "per_client_device", "embedded", "", None),
    ("dwt", "per_client_device", "", "barcode_reader", "counted per_barcode_scan, not per_client_device"),
    # per_concurrent_device: every product
    ("dbr", "per_concurrent_device", "", "", None),
    ("dwt", "per_concurrent_device", "", "", None),
    ("dlr", "per_concurrent_device", "desktop", "", None),
    ("dwt", "per_concurrent_device", "", "barcode_reader", "counted per_barcode_scan, not per_concurrent_device"),
    # per_server: dbr and dlr with edition server only; never dwt
    ("dbr", "per_server", "server", "", None),
    ("dbr", "per_server", "", "", "per_server applies to dbr only with edition server"),
    ("dbr", "per_server", "desktop", "", "per_server applies to dbr only with edition server"),
    ("dwt", "per_server", "server", "", "per_server applies only to dbr and dlr (edition server), not dwt"),
    ("dwt", "per_server", "", "", "per_server applies only to dbr and dlr (edition server), not dwt"),
    ("dlr", "per_server", "server", "", None),
    ("dlr", "per_server", "", "", "per_server applies to dlr only with edition server"),
    # per_domain: dbr only with edition javascript; dwt yes; dlr no
    ("dbr", "per_domain", "javascript", "", None),
    ("dbr", "per_domain", "", "", "per_domain applies to dbr only with edition javascript"),
    ("dbr", "per_domain", "mobile", "", "per_domain applies to dbr only with edition javascript"),
    ("dwt", "per_domain", "", "", None),
    ("dwt", "per_domain", "javascript", "", None),
    ("dlr", "per_domain", "", "", "per_domain applies only to dbr (edition javascript) and dwt, not dlr"),
    ("dlr", "per_domain", "javascript", "", "per_domain applies only to dbr (edition javascript) and dwt, not dlr"),
    # add-ons belong to dwt
    ("dbr", "per_client_device", "", "barcode_reader", "add-ons exist only for dwt, not dbr"),
    ("dlr", "per_concurrent_device", "", "ocr_pro", "add-ons exist only for dwt, not dlr"),
]


def cell_id(cell) -> str:
    product, option, edition, addon, refusal = cell
    return "-".join(p for p in (product, option, edition, addon) if p) + ("-refused" if refusal else "-allowed")


@pytest.mark.django_db
@pytest.mark.parametrize("cell", CELLS, ids=[cell_id(c) for c in CELLS])
def test_it_applies_the_table_cell_through_the_import(cell, now):
    product, option, edition, addon, refusal = cell
    doc = license_file(items=[item_for(product, option, edition, addon)])
    if refusal is None:
        out = import_license(doc, now=now)
        item = LicenseItem.objects.get(pk=int(out["items"][0]["id"]))
        assert (item.product, item.option, item.edition, item.addon) == (product, option, edition, addon)
    else:
        before = row_counts()
        with pytest.raises(LicenseFileError) as e:
            import_license(doc, now=now)
        assert e.value.field.startswith("items[0].")
        assert refusal in e.value.message
        assert row_counts() == before


def spec_allows(product: str, option: str, edition: str, addon: str) -> bool:
    """SPEC section 3, read independently of licenses.rules."""
    if addon and product != "dwt":
        return False
    barcode_addon = addon == "barcode_reader"
    return {
        "per_barcode_scan": product == "dbr" or (product == "dwt" and barcode_addon),
        "per_page": product == "dwt" and not barcode_addon,
        "per_client_device": not barcode_addon,
        "per_concurrent_device": not barcode_addon,
        "per_server": product in ("dbr", "dlr") and edition == "server",
        "per_domain": (product == "dbr" and edition == "javascript") or (product == "dwt" and not barcode_addon),
    }[option]


@pytest.mark.django_db
def test_it_agrees_with_the_spec_on_every_product_option_edition_and_addon(now):
    products, options = ("dbr", "dwt", "dlr"), rules_options()
    editions = ("", "javascript", "mobile", "desktop", "server", "embedded")
    addons = ("", "barcode_reader", "ocr_pro")
    saved = refused = 0
    for product, option, edition, addon in itertools.product(products, options, editions, addons):
        doc = license_file(items=[item_for(product, option, edition, addon)])
        try:
            import_license(doc, now=now)
        except LicenseFileError as e:
            assert not spec_allows(product, option, edition, addon), (product, option, edition, addon, str(e))
            assert e.field.startswith("items[0].") and e.message
            refused += 1
        else:
            assert spec_allows(product, option, edition, addon), (product, option, edition, addon)
            saved += 1
    assert saved + refused == 3 * 6 * 6 * 3
    assert LicenseItem.objects.count() == saved


def rules_options():
    return ("per_barcode_scan", "per_page", "per_client_device", "per_concurrent_device", "per_server", "per_domain")


def item_post(license: License, project: Project, product, option, edition, addon) -> dict:
    data = {
        "license": license.pk,
        "project": project.pk,
        "product": product,
        "option": option,
        "edition": edition,
        "addon": addon,
        "quantity": "",
        "quantities": "",
        "domain": "",
        "period": "yearly",
        "activation_basis": "first_authorization",
        "device_grace_percent": "10",
        "quota_grace_percent": "5",
        "overuse_percent": "10",
        "overuse_budget": "",
        "dedup_interval_ms": "3000",
        "heartbeat_timeout_s": "600",
        "position": "",
    }
    if option == "per_page":
        data["quantities"] = '{"core": 1000}'
    elif option == "per_domain":
        data["domain"] = "example.com"
    else:
        data["quantity"] = "10"
    return data


@pytest.mark.django_db
@pytest.mark.parametrize("cell", CELLS, ids=[cell_id(c) for c in CELLS])
def test_it_applies_the_table_cell_through_the_admin_item_form(cell):
    product, option, edition, addon, refusal = cell
    client, _ = staff_client()
    license = factories.LicenseFactory()
    project = factories.ProjectFactory(organization=license.organization)
    response = client.post(
        "/admin/licenses/licenseitem/add/", item_post(license, project, product, option, edition, addon)
    )
    if refusal is None:
        assert response.status_code == 302, response.context["adminform"].form.errors
        item = LicenseItem.objects.get()
        assert (item.product, item.option, item.edition, item.addon) == (product, option, edition, addon)
    else:
        assert response.status_code == 200
        form = response.context["adminform"].form
        assert refusal in " ".join(str(m) for msgs in form.errors.values() for m in msgs)
        assert refusal in response.content.decode().replace("&#x27;", "'")
        assert LicenseItem.objects.count() == 0


@pytest.mark.django_db
def test_it_lists_a_licenses_items_read_only_with_links_to_their_editor():
    client, _ = staff_client()
    item = factories.LicenseItemFactory(per_server=True)
    body = client.get(f"/admin/licenses/license/{item.license_id}/change/").content.decode()
    assert f"/admin/licenses/licenseitem/{item.pk}/change/" in body
    assert f"/admin/licenses/licenseitem/add/?license={item.license_id}" in body  # Add item
    assert 'name="items-0-quantity"' not in body  # edited on the item's page only


@pytest.mark.django_db
def test_it_refuses_an_item_in_a_project_of_another_organization():
    client, _ = staff_client()
    license = factories.LicenseFactory()
    elsewhere = factories.ProjectFactory()
    data = item_post(license, elsewhere, "dbr", "per_client_device", "", "")
    response = client.post("/admin/licenses/licenseitem/add/", data)
    assert response.status_code == 200
    assert "the project belongs to another organization" in response.content.decode()
    assert LicenseItem.objects.count() == 0
