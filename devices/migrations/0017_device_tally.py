"""A project's devices by state, kept by triggers on the device table (devices.tally): the
table, then the triggers and the tally of the devices already there in one transaction (creating
the triggers blocks writes to the devices until it commits: about a second for a million
devices, an aggregate of the table, so that no device is missed or counted twice)."""

import django.db.models.deletion
from django.db import migrations, models


def forwards(apps, schema_editor):
    from devices import tally

    tally.install(schema_editor.connection)


def backwards(apps, schema_editor):
    from devices import tally

    tally.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0016_device_search_triggers"),
        ("licenses", "0005_apitoken_webhookendpoint_from_api"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeviceTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("state", models.CharField(max_length=16)),
                ("server", models.BooleanField()),
                ("n", models.IntegerField()),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="licenses.project",
                    ),
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
