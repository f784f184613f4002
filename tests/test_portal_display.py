"""portal.display.shown: display values set on an object for its template, never over a name the
object already has (a field, a method, a queryset annotation)."""

from __future__ import annotations

import pytest

from devices.models import Device
from portal.display import shown


def test_it_sets_the_values_and_keeps_the_object():
    device = Device(device_uuid="d-1", state=Device.ACTIVE)
    assert shown(device, effective_state="expired", releasable=False) is device
    assert device.effective_state == "expired" and device.releasable is False  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["state", "holds_seat", "pk"])
def test_it_refuses_a_name_the_model_has(name):
    device = Device(device_uuid="d-1", state=Device.ACTIVE)
    with pytest.raises(ValueError, match=name):
        shown(device, **{name: True})
    assert device.state == Device.ACTIVE and callable(device.holds_seat)


def test_it_refuses_a_name_the_instance_has():
    device = Device(device_uuid="d-1")
    device.annotated = 3  # type: ignore[attr-defined]  # as a queryset annotation sets it
    with pytest.raises(ValueError, match="annotated"):
        shown(device, annotated=4)
    assert device.annotated == 3  # type: ignore[attr-defined]
