"""``devices.models.containing``: the portal's and the admin API's device search through the one
trigram index on ``search_text()``, with exactly the meaning of "one of these columns contains
the query" (SPEC 13: the admin API searches uuid, name and origin; the portal platform too)."""

from __future__ import annotations

import importlib
import random

import pytest
from django.db import connection, transaction
from django.db.models import Q

from devices.models import SEARCHED_COLUMNS, Device, containing
from tests import factories

pytestmark = pytest.mark.django_db

ADMIN_COLUMNS = ("device_uuid", "device_name", "origin")
WORDS = ["Front", "desk", "front\ndesk", "ÄRGER", "ärger", "lab-1", "%", "_", "linux", "https://a.example", ""]


def reference(queryset, q: str, columns) -> set[int]:
    """The definition: a column of ``columns`` contains ``q`` (Django's icontains per column)."""
    any_column = Q()
    for column in columns:
        any_column |= Q(**{f"{column}__icontains": q})
    return set(queryset.filter(any_column).values_list("pk", flat=True))


@pytest.fixture
def fleet():
    item = factories.LicenseItemFactory(quantity=1000)
    rng = random.Random(7)
    for i in range(60):
        factories.DeviceFactory(
            item=item,
            project=item.project,
            device_uuid=f"u{i}-{rng.choice(WORDS)}",
            device_name=rng.choice(WORDS) + " " + rng.choice(WORDS),
            origin=rng.choice(["", "https://a.example", "https://front.example"]),
            platform=rng.choice(["linux", "Front desk", "windows"]),
        )
    return Device.objects.filter(project=item.project)


@pytest.mark.parametrize("columns", [SEARCHED_COLUMNS, ADMIN_COLUMNS], ids=["portal", "admin API"])
def test_containing_is_the_per_column_definition(fleet, columns):
    for q in ["front", "DESK", "k\nd", "sk\nfr", "ärger", "ÄRG", "lab", "%", "_", "linux", "a.example", "u1", "zzz"]:
        assert set(containing(fleet, q, columns).values_list("pk", flat=True)) == reference(fleet, q, columns), q


def test_the_admin_api_search_leaves_platform_out(fleet):
    only_platform = factories.DeviceFactory(
        item=fleet.first().item, project=fleet.first().project, device_uuid="plain", device_name="", platform="Quasar"
    )
    assert only_platform not in containing(fleet, "quasar", ADMIN_COLUMNS)
    assert only_platform in containing(fleet, "quasar")


@pytest.mark.postgres
def test_the_admin_api_search_is_one_trigram_index_scan_on_postgresql(postgres_only, fleet):
    migration = importlib.import_module("devices.migrations.0008_device_list_and_search_indexes")
    qs = containing(Device.objects.order_by(), "front", ADMIN_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(
            f"CREATE INDEX device_search_trgm ON devices_device USING gin (({migration.SEARCH_EXPRESSION}) gin_trgm_ops)"
        )
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = qs.explain()
        transaction.set_rollback(True)
    assert "device_search_trgm" in plan, plan
