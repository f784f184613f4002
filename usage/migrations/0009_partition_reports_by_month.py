"""PostgreSQL: usage reports and their counts become tables partitioned by month of
``slot_start`` (``usage.partitions``; docs/operations.md "Usage partitions"). The rows are copied
into the new tables once, so on a large database this migration takes as long as copying them.

The model state does not change: on SQLite, and to Django, the tables are as before. What
differs on PostgreSQL (a unique constraint there must include the partition key): the primary
keys are ``(id, slot_start)``, ``report_id_unique_per_device`` is ``(device_id, report_id,
slot_start)`` (the hot path keeps ``(device, report_id)`` unique across slots), and the counts
have no foreign key into the reports. Migrating back makes them plain tables again
(``usage.partitions.unpartition_tables``), the counts' foreign key restored."""

from django.db import migrations
from django.utils import timezone


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from usage.partitions import partition_tables

    partition_tables(now=timezone.now())


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from usage.partitions import unpartition_tables

    if unpartition_tables():
        count = apps.get_model("usage", "UsageCount")
        fk = schema_editor._create_fk_sql(count, count._meta.get_field("report"), "_fk_%(to_table)s_%(to_column)s")
        schema_editor.execute(fk)


class Migration(migrations.Migration):
    dependencies = [("usage", "0008_webhookdelivery_webhookattempt_from_api")]

    operations = [migrations.RunPython(partition, reverse_code=unpartition, elidable=False)]
