"""The device search's text moves off the device row into ``DeviceSearch`` (devices.search).

Every usage report refreshes its device's ``last_seen_at`` and ``active_until``; other indexes
hold those columns, so the refresh is never a HOT update, and it wrote an entry for each of the
row's trigrams into ``device_search_trgm`` (0008), whose pending list every search then scanned.
The text now lives in a table of its own, written by triggers only when a device is created,
deleted or one of its searched columns changes; its one trigram index (PostgreSQL) serves both
searches, and the device row's is dropped. SQLite gets the same triggers (no index: it scans)."""

import importlib

from django.db import migrations, models


def forwards(apps, schema_editor):
    from devices import search

    search.install(schema_editor.connection)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS device_search_trgm")


def backwards(apps, schema_editor):
    from devices import search

    search.uninstall(schema_editor.connection)
    if schema_editor.connection.vendor == "postgresql":
        migration = importlib.import_module("devices.migrations.0008_device_list_and_search_indexes")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS device_search_trgm ON devices_device "
            f"USING gin (({migration.SEARCH_EXPRESSION}) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("devices", "0014_seat_share")]

    operations = [
        migrations.CreateModel(
            name="DeviceSearch",
            fields=[
                (
                    "device",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=models.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="devices.device",
                    ),
                ),
                ("text", models.TextField()),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
