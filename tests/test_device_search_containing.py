"""``devices.search.containing``: the portal's and the admin API's device search through the one
trigram index on ``DeviceSearch`` (the text the triggers keep), with exactly the meaning of "one of these columns contains
the query" (SPEC 13: the admin API searches uuid, name and origin; the portal platform too)."""

from __future__ import annotations

import random

import pytest
from django.db import connection, transaction
from django.db.models import Q

from devices import search
from devices.models import SEARCHED_COLUMNS, Device, DeviceSearch
from devices.search import containing
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
def test_the_searches_find_their_candidates_through_one_trigram_index_on_postgresql(postgres_only, fleet):
    """Both searches filter the devices by the ids ``DeviceSearch`` holds for ``q``, and that
    lookup is the index's expression (a test table is too small to prefer it: no scans)."""
    for columns in (SEARCHED_COLUMNS, ADMIN_COLUMNS):
        assert DeviceSearch._meta.db_table in str(containing(Device.objects.all(), "front", columns).query)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = DeviceSearch.objects.filter(text__icontains="front").explain()
    assert search.INDEX in plan, plan


def texts(queryset) -> dict[int, str]:
    return dict(DeviceSearch.objects.filter(device__in=queryset).values_list("device_id", "text"))


def joined(device: Device) -> str:
    return "\n".join(getattr(device, column) for column in SEARCHED_COLUMNS)


def test_the_triggers_keep_one_text_per_device_as_its_searched_columns_change(fleet):
    """Every way a device row is written (the ORM's create, save and update, a bulk insert, a
    delete) leaves exactly one ``DeviceSearch`` row per device, its columns joined."""
    assert texts(fleet) == {d.pk: joined(d) for d in fleet}
    device = fleet.first()
    device.device_name = "Renamed lobby kiosk"
    device.save()
    Device.objects.filter(pk=device.pk).update(platform="Quasar", origin="https://shop.example")
    device.refresh_from_db()
    assert texts(Device.objects.filter(pk=device.pk)) == {device.pk: joined(device)}
    assert device in containing(fleet, "lobby kiosk") and device in containing(fleet, "QUASAR")
    assert device in containing(fleet, "shop.exa", ADMIN_COLUMNS)

    item = device.item
    Device.objects.bulk_create(
        [factories.DeviceFactory.build(item=item, project=item.project, device_uuid=f"bulk-{k}") for k in range(3)]
    )
    assert containing(fleet, "BULK-").count() == 3

    gone = list(fleet.filter(device_uuid__startswith="bulk-").values_list("pk", flat=True))
    Device.objects.filter(pk__in=gone).delete()
    assert not DeviceSearch.objects.filter(device_id__in=gone).exists()
    assert DeviceSearch.objects.count() == Device.objects.count()


def test_the_usage_refresh_leaves_the_search_text_alone(fleet, now):
    """A write of columns the search does not read (a report's refresh, a re-authorization
    with the same name) does not rewrite the text: the trigger fires on the searched columns
    only, and only when one of them changed (PostgreSQL: only a rename gives the text row a new version, a new ctid)."""
    device = fleet.first()
    before = DeviceSearch.objects.get(pk=device.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT ctid::text FROM {DeviceSearch._meta.db_table} WHERE device_id = %s", [device.pk])
            version = cursor.fetchone()[0]
    Device.objects.filter(pk=device.pk).update(last_seen_at=now, active_until=now, first_used_at=now)
    Device.objects.filter(pk=device.pk).update(device_name=device.device_name, platform=device.platform)
    assert DeviceSearch.objects.get(pk=device.pk).text == before.text
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT ctid::text FROM {DeviceSearch._meta.db_table} WHERE device_id = %s", [device.pk])
            assert cursor.fetchone()[0] == version
            Device.objects.filter(pk=device.pk).update(device_name=device.device_name + " (2)")
            cursor.execute(f"SELECT ctid::text FROM {DeviceSearch._meta.db_table} WHERE device_id = %s", [device.pk])
            assert cursor.fetchone()[0] != version


def test_install_is_idempotent_and_fills_in_devices_made_without_the_triggers(fleet):
    """Migration devices 0015 runs ``install`` over devices made before the triggers existed."""
    search.uninstall()
    try:
        item = fleet.first().item
        early = factories.DeviceFactory(item=item, project=item.project, device_uuid="before-the-triggers")
        assert not DeviceSearch.objects.filter(pk=early.pk).exists()
    finally:
        search.install()
        search.install()
    assert early in containing(fleet, "before-the-trig")
    assert DeviceSearch.objects.count() == Device.objects.count()
