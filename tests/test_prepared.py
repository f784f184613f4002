"""devices.prepared: a queryset compiled once per connection gives what the queryset gives
(rows, select_related objects, annotations, converters), with each call's values in place of
the sentinels; PreparedInsert writes the row create() would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import DateTimeField, OuterRef, Subquery
from django.db.models.expressions import RawSQL

from devices.hot_sql import _items_queryset, items_with_device, project_by_key
from devices.models import Decision, Device
from devices.prepared import Prepared, PreparedInsert, PreparedUpdate, sentinel_datetime
from devices.seats import shard_of
from tests import factories
from tests.factories import NOW
from usage.sql import param

pytestmark = pytest.mark.django_db


def _device(item, uuid: str, **fields) -> Device:
    values = {"client_type": "desktop", "state": "active", "first_authorized_at": NOW, "authorized_at": NOW,
              "last_seen_at": NOW, "active_until": NOW + timedelta(days=3)}  # fmt: skip
    values.update(fields)
    return Device.objects.create(project=item.project, item=item, device_uuid=uuid, **values)


def _read(*, license_key: str, device_uuid: str, now):
    """A read like the usage report's: select_related over three tables, a datetime filter, a
    subquery and a raw annotation (converters included: JSON and datetimes on SQLite)."""
    return (
        Device.objects.filter(project__license_key=license_key, device_uuid=device_uuid, active_until__gt=now)
        .select_related("project", "item__license")
        .annotate(
            _decisions=Subquery(Decision.objects.filter(device=OuterRef("pk")).values("counts")[:1]),
            _seen=RawSQL("%s", [param(now)], output_field=DateTimeField()),
        )
    )


def test_a_read_gives_what_the_orm_gives():
    item = factories.LicenseItemFactory(quantity=10)
    device = _device(item, "d1", offline=True, origin="https://a.example.com")
    _device(item, "d2")
    Decision.objects.create(project=item.project, device=device, device_uuid="d1", endpoint="usage", allowed=True,
                            rule="contact", counts={"a": [1, 2]}, created_at=NOW)  # fmt: skip
    prepared = Prepared("test.read", _read, license_key="\x00key", device_uuid="\x00device", now=sentinel_datetime(1))
    args = {"license_key": item.project.license_key, "device_uuid": "d1", "now": NOW}
    [orm] = list(_read(**args))
    [got] = prepared.rows(**args)
    fields = [f.attname for f in Device._meta.concrete_fields]
    assert [getattr(got, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert got.pk == device.pk and got.offline is True and got.active_until == device.active_until
    assert got.project == item.project and got.item == item and got.item.license == item.license
    assert got._decisions == orm._decisions == {"a": [1, 2]} and got._seen == orm._seen == NOW
    # another call, other values: the same compiled SQL, this call's answer
    assert [d.device_uuid for d in prepared.rows(**dict(args, device_uuid="d2"))] == ["d2"]
    assert prepared.rows(**dict(args, now=NOW + timedelta(days=4))) == []
    assert prepared.rows(**dict(args, license_key="no-such-key")) == []


def test_the_authorize_reads_give_what_the_orm_gives():
    first = factories.LicenseItemFactory(quantity=10)
    project = first.project
    later = factories.LicenseItemFactory(quantity=5, project=project, position=1)
    device = _device(first, "d1")
    assert project_by_key(project.license_key) == project
    assert project_by_key("nope") is None
    items = items_with_device(project, "d1")
    expected = list(_items_queryset(project_id=project.pk, device_uuid="d1", shard=shard_of("d1")))
    assert [i.pk for i in items] == [i.pk for i in expected] == [later.pk, first.pk]  # position first
    assert all(i._device_id == device.pk and i._device_state == "active" for i in items)
    assert [i.license.expires_at for i in items] == [i.license.expires_at for i in expected]
    assert items[0].project is project
    assert all(i._device_id is None for i in items_with_device(project, "d2"))
    # The device's share of each seat item as read (none before the item's first seat).
    assert [(i._share_room, i._share_ceiling) for i in items] == [(None, None), (None, None)]


def test_the_statement_is_compiled_once_per_connection():
    calls = []

    def build(*, uuid):
        calls.append(uuid)
        return Device.objects.filter(device_uuid=uuid)

    item = factories.LicenseItemFactory()
    _device(item, "a")
    _device(item, "b")
    prepared = Prepared("test.once", build, uuid="\x00uuid")
    assert [d.device_uuid for d in prepared.rows(uuid="a")] == ["a"]
    assert [d.device_uuid for d in prepared.rows(uuid="b")] == ["b"]
    assert calls == ["\x00uuid"]


def test_a_sentinel_the_sql_does_not_carry_is_an_error():
    prepared = Prepared(
        "test.missing", lambda *, uuid, now: Device.objects.filter(device_uuid=uuid), uuid="u", now=sentinel_datetime(5)
    )
    with pytest.raises(AssertionError, match="now"):
        prepared.rows(uuid="u", now=NOW)


def test_an_update_changes_what_the_queryset_update_would():
    item = factories.LicenseItemFactory()
    device = _device(item, "a")
    update = PreparedUpdate(
        "test.update",
        lambda *, pk, now: (Device.objects.filter(pk=pk, state="active"), {"last_seen_at": now}),
        pk=-(2**62),
        now=sentinel_datetime(1),
    )
    assert update.run(pk=device.pk, now=NOW + timedelta(hours=1)) == 1
    device.refresh_from_db()
    assert device.last_seen_at == NOW + timedelta(hours=1)
    assert update.run(pk=device.pk + 1000, now=NOW) == 0


def test_an_insert_writes_the_row_create_would():
    item = factories.LicenseItemFactory()
    device = _device(item, "a")
    values = {"project": item.project, "device": device, "device_uuid": "a", "item": item, "endpoint": "usage",
              "allowed": False, "code": 120, "rule": "quota_limit_reached", "message": "ünïcode",
              "counts": {"used": 5, "nested": {"x": [1, 2]}}, "created_at": NOW, "client_address": "192.0.2.7"}  # fmt: skip
    made = PreparedInsert(Decision).create(**values)
    orm = Decision.objects.create(**values)
    assert made.pk is not None and made.pk != orm.pk and not made._state.adding
    stored, expected = Decision.objects.get(pk=made.pk), Decision.objects.get(pk=orm.pk)
    fields = [f.attname for f in Decision._meta.concrete_fields if f.attname != "id"]
    assert [getattr(stored, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert connection.vendor in ("postgresql", "sqlite")
