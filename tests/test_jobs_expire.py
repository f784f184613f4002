from datetime import timedelta

import pytest

from devices.models import Device
from tests import factories
from usage import jobs

pytestmark = pytest.mark.django_db


def test_it_expires_a_device_at_the_exact_instant_and_not_a_microsecond_before(now):
    item = factories.LicenseItemFactory(per_client_device=True)
    at_now = factories.DeviceFactory(item=item, active_until=now)
    later = factories.DeviceFactory(item=item, active_until=now + timedelta(microseconds=1))

    summary = jobs.expire_idle_devices(now=now)

    at_now.refresh_from_db()
    later.refresh_from_db()
    assert summary == {"job": "expire_idle_devices", "expired": 1, "tally_rows_folded": 2}  # 2 active + (-1, +1)
    assert at_now.state == Device.EXPIRED
    assert at_now.ended_at == now  # the moment the seat ran out
    assert later.state == Device.ACTIVE and later.ended_at is None


def test_it_records_when_the_seat_ran_out_not_when_the_job_ran(now):
    item = factories.LicenseItemFactory(per_server=True)
    server = factories.DeviceFactory(item=item, active_until=now - timedelta(hours=3))

    jobs.expire_idle_devices(now=now)

    server.refresh_from_db()
    assert server.state == Device.EXPIRED
    assert server.ended_at == now - timedelta(hours=3)


def test_it_leaves_released_and_expired_devices_alone(now):
    item = factories.LicenseItemFactory()
    released = factories.DeviceFactory(item=item, state=Device.RELEASED, active_until=now - timedelta(days=1))
    released.ended_at = now - timedelta(days=2)
    released.save()

    assert jobs.expire_idle_devices(now=now)["expired"] == 0
    released.refresh_from_db()
    assert released.state == Device.RELEASED
    assert released.ended_at == now - timedelta(days=2)


def test_it_changes_nothing_when_run_again(now):
    item = factories.LicenseItemFactory()
    for _ in range(3):
        factories.DeviceFactory(item=item, active_until=now - timedelta(minutes=1))

    assert jobs.expire_idle_devices(now=now)["expired"] == 3
    assert jobs.expire_idle_devices(now=now)["expired"] == 0
    assert Device.objects.filter(state=Device.EXPIRED).count() == 3
