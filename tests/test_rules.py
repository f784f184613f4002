"""The rule homes of licenses.models (SPEC section 4), at their edges, in exact integers."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from licenses import rules
from licenses.models import (
    License,
    LicenseItem,
    effective_overuse_budget_expression,
    effective_overuse_budget_sql,
)
from tests import factories
from tests.factories import NOW


def item(**fields) -> LicenseItem:
    return LicenseItem(product="dbr", option=fields.pop("option", "per_client_device"), **fields)


@pytest.mark.django_db
def test_it_refuses_an_item_that_breaks_the_table_on_save():
    with pytest.raises(ValidationError) as e:
        factories.LicenseItemFactory(option="per_page", product="dbr")
    assert "per_page applies only to dwt" in str(e.value)


def test_it_allows_per_server_only_with_edition_server():
    assert rules.applicability_error("dbr", "per_server", edition="server") is None
    assert "edition server" in rules.applicability_error("dbr", "per_server")


@pytest.mark.parametrize(
    "quantity, grace, ceiling",
    [(10, 10, 11), (30, 10, 33), (1, 10, 1), (9, 10, 9), (19, 10, 20), (5, 0, 5), (3, 50, 4), (1, 1000, 11)],
)
def test_it_floors_the_seat_grace(quantity, grace, ceiling):
    assert item(quantity=quantity, device_grace_percent=grace).seat_ceiling == ceiling


def test_it_gives_a_server_item_no_grace():
    assert item(option="per_server", edition="server", quantity=2, device_grace_percent=50).seat_ceiling == 2


@pytest.mark.parametrize("quantity, overuse, ceiling", [(10, 10, 11), (3, 10, 3), (9, 12, 10), (1, 100, 2)])
def test_it_floors_the_concurrency_ceiling(quantity, overuse, ceiling):
    assert item(option="per_concurrent_device", quantity=quantity, overuse_percent=overuse).concurrency_ceiling == (
        ceiling
    )


def test_it_compares_the_quota_exactly_and_says_where_it_refuses_from():
    scans = item(option="per_barcode_scan", quantity=5, quota_grace_percent=5)
    assert scans.quota_ceiling(5) == Fraction(525, 100)  # 5.25: not rounded
    assert not scans.quota_limit_reached(5, 5)  # the 6th scan is refused, not the 5th
    assert scans.quota_limit_reached(5, 6)
    assert scans.quota_refused_from(5) == 6
    assert scans.quota_refused_from(100) == 105  # exactly 105: refused at 105
    assert not scans.quota_limit_reached(100, 104) and scans.quota_limit_reached(100, 105)


@pytest.mark.parametrize("grace", [0, 1, 5, 10, 33, 100])
def test_it_refuses_from_the_first_used_value_the_limit_refuses(grace):
    scans = item(option="per_barcode_scan", quota_grace_percent=grace)
    for quantity in range(1, 250):
        refused_from = scans.quota_refused_from(quantity)
        assert refused_from == math.ceil(Fraction(quantity * (100 + grace), 100))
        assert scans.quota_limit_reached(quantity, refused_from)
        assert not scans.quota_limit_reached(quantity, refused_from - 1)


def test_it_is_exact_where_floats_are_not():
    # A quantity past 2**53: quantity x 1.1 in floats is off by more than one scan.
    scans = item(option="per_barcode_scan", quota_grace_percent=10)
    quantity = 10**15 + 1
    assert scans.quota_refused_from(quantity) == quantity * 110 // 100 + 1
    assert not scans.quota_limit_reached(quantity, quantity * 110 // 100)


def test_it_defaults_the_overuse_budget_to_a_thousand_device_slots_per_device():
    assert item(option="per_concurrent_device", quantity=3).effective_overuse_budget == 3000
    assert item(option="per_concurrent_device", quantity=3, overuse_budget=0).effective_overuse_budget == 0
    assert item(option="per_concurrent_device", quantity=3, overuse_budget=7).effective_overuse_budget == 7


@pytest.mark.django_db
def test_it_computes_the_same_budget_in_the_database():
    default = factories.LicenseItemFactory(per_concurrent_device=True, quantity=4)
    given = factories.LicenseItemFactory(per_concurrent_device=True, quantity=4, overuse_budget=9)
    annotated = dict(LicenseItem.objects.annotate(b=effective_overuse_budget_expression()).values_list("pk", "b"))
    assert annotated == {default.pk: 4000, given.pk: 9}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.id, {effective_overuse_budget_sql('i')} FROM {LicenseItem._meta.db_table} i ORDER BY i.id"
        )
        assert dict(cursor.fetchall()) == annotated


@pytest.mark.parametrize(
    "status, starts, expires, usable, said",
    [
        (License.ACTIVE, 0, 10, True, "active"),  # starts_at <= now: usable from its first instant
        (License.ACTIVE, 1, 10, False, "not started"),
        (License.ACTIVE, -10, 0, False, "expired"),  # now < expires_at: not at its last instant
        (License.ACTIVE, -10, 1, True, "active"),
        (License.SUSPENDED, -10, 10, False, "suspended"),
        (License.REVOKED, -10, -1, False, "revoked"),
    ],
)
def test_it_says_when_a_license_is_usable_and_what_a_person_would_call_it(status, starts, expires, usable, said):
    second = timedelta(seconds=1)
    license = License(status=status, starts_at=NOW + starts * second, expires_at=NOW + expires * second)
    assert license.usable_at(NOW) is usable
    assert license.display_status(NOW) == said


@pytest.mark.django_db
def test_it_filters_usable_licenses_and_items_by_the_same_rule():
    usable = factories.LicenseItemFactory(license__starts_at=NOW, license__expires_at=NOW + timedelta(days=1))
    factories.LicenseItemFactory(license__starts_at=NOW - timedelta(days=2), license__expires_at=NOW)
    factories.LicenseItemFactory(license__status=License.SUSPENDED)
    factories.LicenseItemFactory(license__starts_at=NOW + timedelta(seconds=1))
    assert list(LicenseItem.objects.usable_at(NOW)) == [usable]
    assert list(License.objects.usable_at(NOW)) == [usable.license]
    assert [lic.usable_at(NOW) for lic in License.objects.order_by("id")] == [True, False, False, False]


@pytest.mark.django_db
def test_it_orders_a_projects_items_by_position_then_expiry_then_id():
    project = factories.ProjectFactory()

    def add(days: int, position: int | None = None) -> LicenseItem:
        license = factories.LicenseFactory(organization=project.organization, expires_at=NOW + timedelta(days=days))
        return factories.LicenseItemFactory(project=project, license=license, position=position)

    late, soon, placed_second, placed_first, soon_too = add(300), add(3), add(900, 1), add(400, 0), add(3)
    assert list(project.items_in_order()) == [placed_first, placed_second, soon, soon_too, late]
    assert list(LicenseItem.objects.filter(project=project).in_consumption_order()) == list(project.items_in_order())
