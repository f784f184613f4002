"""Device search (portal device list: device_uuid, device_name, origin, platform contain the
query, case-insensitively) served by trigram GIN indexes on PostgreSQL. Django's ``icontains``
there is ``UPPER(col::text) LIKE UPPER(%s)``, so each index is on that exact expression. SQLite
(the embedded default) keeps its scan: nothing to do."""

from django.db import migrations

COLUMNS = ("device_uuid", "device_name", "origin", "platform")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS device_search_{column}_trgm ON devices_device '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS device_search_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("devices", "0004_seatcounter")]

    operations = [migrations.RunPython(forwards, backwards)]
