"""The portal's device list at fleet scale (docs/benchmarks.md, "Pages and exports").

- ``device_list_idx`` (project, last_seen_at, id) replaces the index on last_seen_at alone: every
  query on last_seen_at is one project's (the device list newest first, devices.csv, idle
  devices), and any page of the list walks it instead of sorting the project's devices.
- ``device_search_trgm``: one trigram GIN index on ``devices.models.search_text()`` as Django's
  ``icontains`` compiles it on PostgreSQL (``UPPER((a || '\\n' || b ...)::text)``), so the
  portal's search is one index scan; it replaces the per-column index on platform, which only
  that search used (the admin API's search keeps the uuid, name and origin ones of 0005).
SQLite (the embedded default) keeps its scan."""

from django.db import migrations, models

LF = "E'\\n'"  # a line feed (standard strings take a backslash literally)
SEARCH_EXPRESSION = f'UPPER(("device_uuid" || {LF} || "device_name" || {LF} || "origin" || {LF} || "platform")::text)'


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS device_search_trgm ON devices_device USING gin (({SEARCH_EXPRESSION}) gin_trgm_ops)"
    )
    schema_editor.execute("DROP INDEX IF EXISTS device_search_platform_trgm")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS device_search_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS device_search_platform_trgm ON devices_device "
        'USING gin ((UPPER("platform"::text)) gin_trgm_ops)'
    )


class Migration(migrations.Migration):
    dependencies = [("devices", "0007_device_user_agent")]

    operations = [
        migrations.AlterField(model_name="device", name="last_seen_at", field=models.DateTimeField()),
        migrations.AddIndex(
            model_name="device",
            index=models.Index(fields=["project", "last_seen_at", "id"], name="device_list_idx"),
        ),
        migrations.RunPython(forwards, backwards),
    ]
