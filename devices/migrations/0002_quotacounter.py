# The quota counters move from usage to devices (authorization reads them): the table is renamed,
# its rows and constraints kept.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0001_initial"),
        ("licenses", "0001_initial"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="QuotaCounter",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("metric", models.CharField(max_length=32)),
                        ("used", models.BigIntegerField(default=0)),
                        (
                            "item",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="counters",
                                to="licenses.licenseitem",
                            ),
                        ),
                    ],
                    options={
                        "constraints": [
                            models.UniqueConstraint(fields=("item", "metric"), name="quota_counter_unique"),
                            models.CheckConstraint(condition=models.Q(("used__gte", 0)), name="quota_counter_non_negative"),
                        ],
                    },
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE usage_quotacounter RENAME TO devices_quotacounter",
                    "ALTER TABLE devices_quotacounter RENAME TO usage_quotacounter",
                ),
            ],
        ),
    ]
