"""domain_matches / domain_unit: the per_domain rules of SPEC section 4."""

from __future__ import annotations

import pytest

from licenses.domains import domain_matches, domain_unit
from licenses.models import MultiTenantDomain


def test_it_puts_subdomains_of_one_company_in_one_unit():
    assert domain_unit("a.company.com", multi_tenant=[]) == "company.com"
    assert domain_unit("b.company.com", multi_tenant=[]) == "company.com"
    assert domain_matches("company.com", "a.company.com", multi_tenant=[])
    assert domain_matches("company.com", "b.company.com", multi_tenant=[])
    assert domain_matches("a.company.com", "b.company.com", multi_tenant=[])
    assert domain_matches("company.com", "company.com", multi_tenant=[])
    assert not domain_matches("company.com", "othercompany.com", multi_tenant=[])
    assert not domain_matches("company.com", "company.com.evil.net", multi_tenant=[])
    assert not domain_matches("company.com", "company.co", multi_tenant=[])


def test_it_reads_the_wildcard_as_the_unit():
    assert domain_matches("*.company.com", "company.com", multi_tenant=[])
    assert domain_matches("*.company.com", "deep.a.company.com", multi_tenant=[])
    assert domain_matches("*.company.co.uk", "shop.company.co.uk", multi_tenant=[])
    assert not domain_matches("*.company.co.uk", "other.co.uk", multi_tenant=[])
    assert not domain_matches("a.*.company.com", "a.b.company.com", multi_tenant=[])


def test_it_uses_the_private_section_of_the_public_suffix_list():
    assert domain_unit("alice.github.io", multi_tenant=[]) == "alice.github.io"
    assert domain_unit("www.alice.github.io", multi_tenant=[]) == "alice.github.io"
    assert domain_matches("alice.github.io", "www.alice.github.io", multi_tenant=[])
    assert domain_matches("*.alice.github.io", "alice.github.io", multi_tenant=[])
    assert not domain_matches("alice.github.io", "bob.github.io", multi_tenant=[])
    # A public suffix is its own unit: licensing "github.io" does not license every tenant.
    assert not domain_matches("github.io", "bob.github.io", multi_tenant=[])
    assert not domain_matches("*.github.io", "bob.github.io", multi_tenant=[])


@pytest.mark.django_db
def test_it_goes_one_label_deeper_on_the_seeded_force_com():
    assert MultiTenantDomain.objects.filter(domain="force.com").exists()
    assert domain_unit("dynamsoft.force.com") == "dynamsoft.force.com"
    assert domain_unit("eu.dynamsoft.force.com") == "dynamsoft.force.com"
    assert domain_matches("dynamsoft.force.com", "dynamsoft.force.com")
    assert domain_matches("*.dynamsoft.force.com", "sales.dynamsoft.force.com")
    assert not domain_matches("dynamsoft.force.com", "other.force.com")
    assert not domain_matches("*.force.com", "other.force.com")


@pytest.mark.django_db
def test_it_follows_the_editable_multi_tenant_list():
    assert domain_matches("acme.platform.example", "rival.platform.example")
    MultiTenantDomain.objects.create(domain="Platform.Example.")
    assert not domain_matches("acme.platform.example", "rival.platform.example")
    assert domain_matches("acme.platform.example", "www.acme.platform.example")
    MultiTenantDomain.objects.filter(domain="force.com").delete()
    assert domain_matches("dynamsoft.force.com", "other.force.com")


def test_it_can_take_a_non_registrable_platform():
    # A platform entered below the registrable domain still splits tenants one label deeper.
    tenants = ["my.salesforce.com"]
    assert domain_unit("acme.my.salesforce.com", multi_tenant=tenants) == "acme.my.salesforce.com"
    assert not domain_matches("acme.my.salesforce.com", "rival.my.salesforce.com", multi_tenant=tenants)


@pytest.mark.parametrize(
    "item_domain, host",
    [
        ("company.com", "APP.Company.COM"),
        ("COMPANY.COM", "app.company.com"),
        ("company.com", "app.company.com."),
        ("company.com.", "app.company.com"),
        ("company.com", "app.company.com:8443"),
        ("company.com", "https://app.company.com:8443"),
        ("bücher.de", "shop.xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "shop.bücher.de"),
        ("*.BÜCHER.de", "SHOP.BÜCHER.DE."),
        ("пример.рф", "www.xn--e1afmkfd.xn--p1ai"),
    ],
)
def test_it_ignores_case_port_trailing_dot_and_idn_spelling(item_domain, host):
    assert domain_matches(item_domain, host, multi_tenant=[])


@pytest.mark.parametrize(
    "item_domain, host, expected",
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.1:8080", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("10.0.0.1", "1.10.0.0.1", False),
        ("0.0.1", "10.0.0.1", False),
        ("localhost", "localhost", True),
        ("localhost", "LOCALHOST.", True),
        ("localhost", "localhost:3000", True),
        ("localhost", "app.localhost", False),
        ("*.localhost", "app.localhost", False),
        ("::1", "::1", True),
        ("[::1]", "[0:0::1]:8000", True),
        ("::1", "::2", False),
        ("example.com", "127.0.0.1", False),
        ("example.com", "localhost", False),
        ("127.0.0.1", "example.com", False),
        ("1.2.3.4", "4.3.2.1.in-addr.arpa", False),
    ],
)
def test_it_matches_addresses_and_localhost_only_exactly(item_domain, host, expected):
    assert domain_matches(item_domain, host, multi_tenant=[]) is expected


@pytest.mark.parametrize(
    "item_domain, host",
    [("", "example.com"), ("example.com", ""), ("example.com", "exa mple.com"), ("*", "example.com"), ("com", "a.com")],
)
def test_it_never_matches_garbage(item_domain, host):
    assert not domain_matches(item_domain, host, multi_tenant=[])
