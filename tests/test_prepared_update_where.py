"""devices.prepared.update_where: the ORM's ``filter(...).update(...)`` for plain values and
equality filters, through the hot cursor (a re-authorization's device update, devices.services):
the same rows changed to the same values, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from devices.models import Device
from devices.prepared import update_where
from tests import factories
from tests.factories import NOW

pytestmark = pytest.mark.django_db


def _device(uuid: str, item, **fields) -> Device:
    defaults = {"client_type": "desktop", "state": "active", "first_authorized_at": NOW, "authorized_at": NOW,
                "last_seen_at": NOW, "active_until": NOW + timedelta(days=1)}  # fmt: skip
    return Device.objects.create(project=item.project, device_uuid=uuid, item=item, **(defaults | fields))


def test_it_writes_what_the_orm_update_writes():
    item, other = factories.LicenseItemFactory(), factories.LicenseItemFactory()
    a, b = _device("a", item, ended_at=NOW), _device("b", item, ended_at=NOW)
    later = NOW + timedelta(hours=5, microseconds=7)
    values = {"item": other, "state": "active", "authorized_at": later, "ended_at": None, "offline": True,
              "origin": "https://x.example", "user_agent": "UA é"}  # fmt: skip
    assert update_where(Device, values, {"id": a.pk, "state": "active", "item": item.pk}) == 1
    assert Device.objects.filter(pk=b.pk).update(**values) == 1
    columns = ["item_id", "state", "authorized_at", "ended_at", "offline", "origin", "user_agent", "last_seen_at"]
    got, want = (Device.objects.filter(pk=pk).values(*columns).get() for pk in (a.pk, b.pk))
    assert got == want and got["item_id"] == other.pk and got["authorized_at"] == later and got["ended_at"] is None


def test_its_conditions_are_the_filters_none_is_null():
    item = factories.LicenseItemFactory()
    bound, unbound = _device("a", item), _device("b", item)
    Device.objects.filter(pk=unbound.pk).update(item=None)
    assert update_where(Device, {"state": "released"}, {"id": bound.pk, "state": "expired", "item": item.pk}) == 0
    assert update_where(Device, {"state": "released"}, {"id": unbound.pk, "item": item.pk}) == 0
    assert update_where(Device, {"state": "released"}, {"id": unbound.pk, "item": None}) == 1
    assert Device.objects.get(pk=unbound.pk).state == "released" and Device.objects.get(pk=bound.pk).state == "active"


def test_an_expression_is_refused():
    item = factories.LicenseItemFactory()
    device = _device("a", item)
    with pytest.raises(TypeError, match="last_seen_at"):
        update_where(Device, {"last_seen_at": F("authorized_at")}, {"id": device.pk})
