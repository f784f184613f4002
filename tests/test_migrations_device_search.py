"""Migrations devices 0015 and 0016 on a fleet that exists: a scratch database migrated to devices
0014 (every other app to its latest) with devices, then forward, gives every device its searched
text and the triggers that keep it (a rename after the migration is found); on PostgreSQL the
trigram index moved from the device row to ``DeviceSearch`` and is valid, and running the
online install again (an interrupted migration re-run, its index left invalid) repairs the
index and writes nothing twice; migrated back, the triggers are gone and the device row's index
is back. Runs ``migrate`` in a subprocess on a database of its own, as
tests/test_migrations_model_move.py does."""

from __future__ import annotations

import pytest

from tests.test_migrations_model_move import migrated_to, run_in_scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SCRIPT = (
    migrated_to("devices", "0014_seat_share")
    + r"""
from devices.models import Device
from tests import factories  # the device model is 0014's: only DeviceSearch is new

item = factories.LicenseItemFactory(quantity=100)
made = [
    factories.DeviceFactory(item=item, project=item.project, device_uuid=f"fleet-{k}", device_name=f"Kiosk {k}",
                            platform="android" if k % 2 else "ios")
    for k in range(5)
]  # fmt: skip

executor = MigrationExecutor(connection)
executor.migrate(executor.loader.graph.leaf_nodes())

from devices import search
from devices.models import DeviceSearch

texts = dict(DeviceSearch.objects.values_list("device_id", "text"))
Device.objects.filter(pk=made[0].pk).update(device_name="Renamed lobby")
found = sorted(search.containing(Device.objects.all(), "lobby").values_list("device_uuid", flat=True))
out = {"texts": {str(k): v for k, v in texts.items()}, "ids": [d.pk for d in made], "found": found}
if connection.vendor == "postgresql":
    def indexes():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname LIKE 'device_search%%' ORDER BY 1"
            )
            return cursor.fetchall()
    out["indexes"] = indexes()
    with connection.cursor() as cursor:  # an interrupted CONCURRENTLY build leaves it invalid
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [search.INDEX])
    out["invalid"] = indexes()
    search.install(connection, online=True)
    out["repaired"] = indexes()
    out["rows_after_rerun"] = DeviceSearch.objects.count()
executor = MigrationExecutor(connection)
executor.migrate([BEFORE])
with connection.cursor() as cursor:
    if connection.vendor == "postgresql":
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        out["back_triggers"] = [name for (name,) in cursor.fetchall()]
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'device_search%%'")
        out["back_indexes"] = [name for (name,) in cursor.fetchall()]
    else:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        out["back_triggers"] = [name for (name,) in cursor.fetchall()]
print(json.dumps(out))
"""
)


def test_the_fleet_gets_its_search_text_triggers_and_index(tmp_path):
    out = run_in_scratch_database(tmp_path, SCRIPT)
    ids = out["ids"]
    assert {int(k) for k in out["texts"]} == set(ids)
    assert out["texts"][str(ids[1])] == "fleet-1\nKiosk 1\n\nandroid"  # uuid, name, origin, platform
    assert out["found"] == ["fleet-0"]  # renamed after the migration: the trigger rewrote its text
    assert out["back_triggers"] == []
    if "indexes" in out:  # PostgreSQL
        assert out["indexes"] == [["device_search_text_trgm", True]]  # the device row's is dropped
        assert out["invalid"] == [["device_search_text_trgm", False]]
        assert out["repaired"] == [["device_search_text_trgm", True]]
        assert out["rows_after_rerun"] == len(ids)
        assert out["back_indexes"] == ["device_search_trgm"]
