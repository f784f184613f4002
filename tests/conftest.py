from __future__ import annotations

import pytest
import time_machine
from django.apps import apps
from django.db import connection
from django.db.models.signals import post_migrate

from tests import factories


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database comes from the models (``--nomigrations``): on PostgreSQL its usage
    reports and counts are partitioned as migration 0009 does, with the months around
    ``factories.NOW`` (usage.partitions), and the device search's and the device tally's
    triggers are installed as migrations devices 0016 and 0017 do (devices.search,
    devices.tally)."""
    from devices import search, tally
    from usage.partitions import partition_tables

    with django_db_blocker.unblock():
        partition_tables(now=factories.NOW)
        search.install()
        tally.install()


def _no_tally_without_devices(sender, using, **kwargs):
    """SQLite's flush after a transactional test deletes table by table, in no set order: devices
    deleted after the tally append their -1 rows to it (devices.tally's delete trigger), which the
    next test would read. A flushed database has no devices, so no tally either. The flush command
    sends post_migrate when it is done; PostgreSQL's flush truncates, and no trigger fires."""
    from django.db import connections

    from devices.models import Device, DeviceTally

    if connections[using].vendor == "sqlite" and not Device.objects.using(using).exists():
        DeviceTally.objects.using(using).all().delete()


post_migrate.connect(_no_tally_without_devices, sender=apps.get_app_config("devices"), dispatch_uid="tests-tally")


@pytest.fixture
def now():
    return factories.NOW


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def no_rate_limits(settings):
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "0"


@pytest.fixture
def frozen():
    """The clock stopped at factories.NOW; ``factories.move_clock(dt)`` moves it."""
    with time_machine.travel(factories.NOW, tick=False) as traveller:
        factories._travellers.append(traveller)
        try:
            yield traveller
        finally:
            factories._travellers.remove(traveller)
