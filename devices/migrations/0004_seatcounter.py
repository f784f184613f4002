"""The active-seat counter per item (devices.seats), filled from the devices as they are."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
INSERT INTO devices_seatcounter (item_id, active)
SELECT item_id, COUNT(*) FROM devices_device WHERE state = 'active' AND item_id IS NOT NULL GROUP BY item_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0003_device_offline"),
        ("licenses", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SeatCounter",
            fields=[
                (
                    "item",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="seat_counter",
                        serialize=False,
                        to="licenses.licenseitem",
                    ),
                ),
                ("active", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("active__gte", 0)), name="seat_counter_non_negative")
                ],
            },
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
