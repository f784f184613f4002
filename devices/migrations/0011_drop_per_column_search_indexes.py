"""The admin API's device search (SPEC 13: uuid, name or origin contains the query) now finds its
candidates through the one trigram index on ``devices.models.search_text()`` (0008) and checks
the three columns on those rows (``devices.models.containing``), so the per-column trigram
indexes of 0005 serve no query: three GIN index writes fewer per new or renamed device.
SQLite has none: nothing to do."""

from django.db import migrations

COLUMNS = ("device_uuid", "device_name", "origin")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS device_search_{column}_trgm")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS device_search_{column}_trgm ON devices_device "
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [("devices", "0010_hot_path_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
