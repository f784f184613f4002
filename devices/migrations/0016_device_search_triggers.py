"""The device search's triggers, the text of the devices already there, and the trigram index
moved from the device row to ``DeviceSearch`` (devices.search; the table is 0015's).

Not atomic, so that a large fleet migrates while the device API answers (devices.search.install,
online): the triggers are created in a transaction of their own (the one step that blocks writes
to the devices, briefly), the backfill only reads them, and both indexes are built and dropped
CONCURRENTLY. Run again after an interruption, each step finds its work done (the triggers are
replaced, the backfill skips devices that have their text, IF NOT EXISTS), and an index left
invalid by an interrupted CONCURRENTLY build is dropped and built again."""

import importlib

from django.db import migrations


def forwards(apps, schema_editor):
    from devices import search

    search.install(schema_editor.connection, online=True)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS device_search_trgm")


def backwards(apps, schema_editor):
    from devices import search

    search.uninstall(schema_editor.connection)
    # Emptied: texts would go stale without the triggers, and forwards fills in every device again.
    schema_editor.execute(f"DELETE FROM {search.DeviceSearch._meta.db_table}")
    if schema_editor.connection.vendor == "postgresql":
        migration = importlib.import_module("devices.migrations.0008_device_list_and_search_indexes")
        schema_editor.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS device_search_trgm ON devices_device "
            f"USING gin (({migration.SEARCH_EXPRESSION}) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("devices", "0015_device_search_table")]

    operations = [migrations.RunPython(forwards, backwards, atomic=False)]
