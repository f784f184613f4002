"""Which items serve a request, consumption order, rebinding, renewals, and per_domain items
(SPEC section 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Device
from licenses.clock import slot_start_of
from licenses.models import MultiTenantDomain
from tests import factories
from tests.factories import NOW, authorize, error_of, move_clock, report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def items(*specs, org=None):
    """Items on one project, each on its own license: specs are (expires_in_days, fields)."""
    org = org or factories.OrganizationFactory()
    project = factories.ProjectFactory(organization=org)
    made = []
    for days, fields in specs:
        lic = factories.LicenseFactory(
            organization=org, starts_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=days)
        )
        made.append(factories.LicenseItemFactory(project=project, license=lic, **fields))
    return project, made


def item_of(response) -> str:
    return response.json()["item"]["id"]


def test_it_consumes_the_item_that_expires_first_then_the_next(client):
    project, (late, early) = items((200, {"quantity": 1, "device_grace_percent": 0}),
                                   (100, {"quantity": 1, "device_grace_percent": 0}))  # fmt: skip
    assert item_of(authorize(client, project, "a")) == str(early.pk)
    assert item_of(authorize(client, project, "b")) == str(late.pk)
    refused = authorize(client, project, "c")
    assert error_of(refused)["code"] == 120  # the refusal of the first matching item
    assert error_of(refused)["message"].startswith("1 of 1 seats")


def test_an_explicit_position_wins_over_expiry(client):
    project, (late, early) = items((200, {"position": 0}), (100, {}))
    assert item_of(authorize(client, project, "a")) == str(late.pk)


def test_a_bound_device_stays_on_its_item_after_a_reorder(client):
    project, (first, second) = items((100, {}), (200, {}))
    assert item_of(authorize(client, project, "a")) == str(first.pk)
    first.position, second.position = 1, 0
    first.save()
    second.save()
    assert item_of(authorize(client, project, "a")) == str(first.pk)  # stays, no second seat
    assert item_of(authorize(client, project, "b")) == str(second.pk)
    assert Device.objects.filter(device_uuid="a").count() == 1


def test_a_device_moves_on_when_its_item_is_exhausted(client):
    project, (small, big) = items(
        (100, {"option": "per_barcode_scan", "quantity": 10, "quota_grace_percent": 0}),
        (200, {"option": "per_barcode_scan", "quantity": 1000}),
    )
    assert item_of(authorize(client, project, "a")) == str(small.pk)
    report(client, project, "a", barcode_scans=10)
    assert item_of(authorize(client, project, "a")) == str(big.pk)  # added quota: same key, next item


def test_a_renewal_takes_over_when_the_old_term_ends(client):
    org = factories.OrganizationFactory()
    project = factories.ProjectFactory(organization=org)
    old = factories.LicenseFactory(
        organization=org, starts_at=NOW - timedelta(days=365), expires_at=NOW + timedelta(days=1)
    )
    new = factories.LicenseFactory(
        organization=org, starts_at=NOW + timedelta(days=1), expires_at=NOW + timedelta(days=366)
    )
    old_item = factories.LicenseItemFactory(project=project, license=old, quantity=5)
    new_item = factories.LicenseItemFactory(project=project, license=new, quantity=5)
    assert item_of(authorize(client, project, "a")) == str(old_item.pk)
    later = NOW + timedelta(days=1)
    move_clock(later)
    lost = report(client, project, "a", slot=slot_start_of(later), barcode_scans=1).json()
    assert lost["error"]["code"] == 4  # its seat ended with the old term
    again = authorize(client, project, "a")
    assert item_of(again) == str(new_item.pk)
    assert again.json()["active_until"] == "2027-11-28T17:24:00Z"
    assert Device.objects.get(device_uuid="a").item == new_item


def test_expired_items_are_skipped_when_another_serves(client):
    project, (gone, live) = items((-1, {}), (100, {}))
    assert item_of(authorize(client, project, "a")) == str(live.pk)


def test_every_matching_item_not_yet_effective_or_suspended(client):
    org = factories.OrganizationFactory()
    project = factories.ProjectFactory(organization=org)
    factories.LicenseItemFactory(
        project=project, license=factories.LicenseFactory(organization=org, status="suspended")
    )
    factories.LicenseItemFactory(project=project, license=factories.LicenseFactory(organization=org, status="revoked"))
    assert error_of(authorize(client, project))["code"] == 113
    project2 = factories.ProjectFactory(organization=org)
    for _ in range(2):
        factories.LicenseItemFactory(
            project=project2, license=factories.LicenseFactory(organization=org, starts_at=NOW + timedelta(days=2))
        )
    assert error_of(authorize(client, project2))["code"] == 112


def test_a_full_item_is_refused_before_an_expired_one(client):
    project, (gone, full) = items((-1, {}), (100, {"quantity": 1, "device_grace_percent": 0}))
    authorize(client, project, "a")
    assert error_of(authorize(client, project, "b"))["code"] == 120


@pytest.mark.parametrize(
    "item_fields, request_fields, serves",
    [
        ({"edition": "javascript"}, {"edition": "javascript", "client_type": "web", "origin": "https://a.b"}, True),
        ({"edition": "javascript"}, {"edition": "mobile", "client_type": "mobile"}, False),
        ({"edition": "javascript"}, {"client_type": "desktop"}, False),
        ({}, {"edition": "desktop", "client_type": "desktop"}, True),
        ({}, {"client_type": "embedded"}, True),
        ({}, {"product": "dlr"}, False),
        ({"product": "dwt"}, {"product": "dwt", "addon": "barcode_reader"}, False),
        ({"option": "per_page", "product": "dwt"}, {"product": "dwt", "client_type": "server"}, True),
        ({"option": "per_barcode_scan"}, {"client_type": "server"}, True),
        ({"option": "per_concurrent_device"}, {"client_type": "server"}, False),
    ],
)
def test_which_items_serve_a_request(client, item_fields, request_fields, serves):
    item = factories.LicenseItemFactory(**item_fields)
    response = authorize(client, item.project, **request_fields)
    assert (response.status_code == 200) is serves, response.json()
    if not serves:
        assert error_of(response)["code"] == 104


# --- per_domain --------------------------------------------------------------------------------


def web(client, item, origin: str, uuid: str = "w"):
    product = item.product
    edition = "javascript" if product == "dbr" else None
    return authorize(client, item.project, uuid, product=product, edition=edition, client_type="web", origin=origin)


@pytest.mark.parametrize(
    "domain, origin, ok",
    [
        ("*.example.com", "https://app.example.com", True),
        ("example.com", "https://a.b.example.com:8443", True),
        ("*.example.com", "https://APP.EXAMPLE.COM", True),
        ("example.com", "https://example.com.", True),
        ("example.com", "https://example.org", False),
        ("example.com", "https://notexample.com", False),
        ("bücher.de", "https://shop.xn--bcher-kva.de", True),
        ("xn--bcher-kva.de", "https://SHOP.BÜCHER.DE", True),
        ("acme.github.io", "https://acme.github.io", True),
        ("acme.github.io", "https://other.github.io", False),
        ("127.0.0.1", "http://127.0.0.1:8080", True),
        ("example.com", "http://127.0.0.1", False),
        ("localhost", "http://localhost:3000", True),
        ("example.com", "http://localhost", False),
    ],
)
def test_domain_items_match_the_registrable_domain(client, domain, origin, ok):
    item = factories.LicenseItemFactory(per_domain=True, product="dwt", domain=domain)
    response = web(client, item, origin)
    assert (response.status_code == 200) is ok, response.json()
    if ok:
        body = response.json()
        assert body["remaining"] == {} and body["active_until"] == item.license.expires_at.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    else:
        assert error_of(response)["code"] == 103


def test_a_multi_tenant_platform_is_matched_one_label_deeper(client):
    MultiTenantDomain.objects.get_or_create(domain="force.com")
    item = factories.LicenseItemFactory(per_domain=True, product="dwt", domain="dynamsoft.force.com")
    assert web(client, item, "https://dynamsoft.force.com").status_code == 200
    assert web(client, item, "https://eu.dynamsoft.force.com", "w2").status_code == 200
    assert error_of(web(client, item, "https://other.force.com", "w3"))["code"] == 103


def test_the_device_records_its_normalized_origin(client):
    item = factories.LicenseItemFactory(per_domain=True, product="dwt", domain="example.com")
    assert web(client, item, "HTTPS://App.Example.COM:443").status_code == 200
    assert Device.objects.get().origin == "https://app.example.com"


def test_domain_items_serve_only_web_clients(client):
    item = factories.LicenseItemFactory(per_domain=True, product="dwt", domain="example.com")
    assert error_of(authorize(client, item.project, product="dwt", client_type="desktop"))["code"] == 104


def test_a_domain_mismatch_falls_through_to_a_device_item(client):
    project, (domain_item, seats) = items(
        (100, {"option": "per_domain", "product": "dwt", "domain": "example.com"}),
        (200, {"product": "dwt"}),
    )
    response = authorize(client, project, product="dwt", client_type="web", origin="https://other.org")
    assert item_of(response) == str(seats.pk)
