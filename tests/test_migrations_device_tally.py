"""Migration devices 0017 on a fleet that exists: a scratch database migrated to devices 0016
(every other app to its latest) with devices in every state, then forward, gives each project
its tally and the triggers that keep it (a device released after the migration moves it);
migrated back, the triggers are gone. Runs ``migrate`` in a subprocess on a database of its
own, as tests/test_migrations_model_move.py does."""

from __future__ import annotations

import pytest

from tests.test_migrations_model_move import migrated_to, run_in_scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SCRIPT = (
    migrated_to("devices", "0016_device_search_triggers")
    + r"""
from devices.models import Device
from tests import factories
from tests.factories import NOW

seats = factories.LicenseItemFactory(per_client_device=True, quantity=100)
servers = factories.LicenseItemFactory(per_server=True, license=seats.license, project=seats.project, quantity=9)
made = [factories.DeviceFactory(item=seats, state=state) for state in ("active", "active", "expired", "released")]
factories.DeviceFactory(item=servers)
factories.DeviceFactory(item=seats, active_until=NOW)  # run out, not yet marked by the job

executor = MigrationExecutor(connection)
executor.migrate(executor.loader.graph.leaf_nodes())

from devices import tally

out = {"after": tally.totals(seats.project_id, now=NOW)}
Device.objects.filter(pk=made[0].pk).update(state="released")
out["moved"] = tally.totals(seats.project_id, now=NOW)
out["wrong"] = tally.recount(fix=False)
executor = MigrationExecutor(connection)
executor.migrate([BEFORE])
with connection.cursor() as cursor:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'device_tally%%'")
    else:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'device_tally%%'")
    out["back_triggers"] = [name for (name,) in cursor.fetchall()]
print(json.dumps(out))
"""
)


def test_the_fleet_gets_its_tally_and_the_triggers_that_keep_it(tmp_path):
    out = run_in_scratch_database(tmp_path, SCRIPT)
    assert out["after"] == {"all": 6, "active": 3, "expired": 2, "released": 1, "servers": 1}
    assert out["moved"] == {"all": 6, "active": 2, "expired": 2, "released": 2, "servers": 1}
    assert out["wrong"] == []
    assert out["back_triggers"] == []
