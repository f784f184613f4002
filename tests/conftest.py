from __future__ import annotations

import pytest
import time_machine
from django.db import connection

from tests import factories


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database comes from the models (``--nomigrations``): on PostgreSQL its usage
    reports and counts are partitioned as migration 0009 does, with the months around
    ``factories.NOW`` (usage.partitions), and the device search's triggers are installed as
    migration devices 0015 does (devices.search)."""
    from devices import search
    from usage.partitions import partition_tables

    with django_db_blocker.unblock():
        partition_tables(now=factories.NOW)
        search.install()


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
