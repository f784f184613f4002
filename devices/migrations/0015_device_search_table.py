"""The device search's text moves off the device row into ``DeviceSearch`` (devices.search).

Every usage report refreshes its device's ``last_seen_at`` and ``active_until``; other indexes
hold those columns, so the refresh is never a HOT update, and it wrote an entry for each of the
row's trigrams into ``device_search_trgm`` (0008), whose pending list every search then scanned.
The text now lives in a table of its own, written by triggers only when a device is created,
deleted or one of its searched columns changes; its one trigram index (PostgreSQL) serves both
searches, and the device row's is dropped. SQLite gets the same triggers (no index: it scans).

This migration creates the table; 0016 installs the triggers, fills it and moves the index."""

from django.db import migrations, models


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
    ]
