"""ConcurrencyRollup's device counts in 64 bits: a slot may reach the overuse ceiling, past 2^31
for a quantity the importer accepts (SPEC 4, 5)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("usage", "0006_usagereport_raw_sightings")]

    operations = [
        migrations.AlterField(
            model_name="concurrencyrollup", name="active_devices", field=models.PositiveBigIntegerField()
        ),
        migrations.AlterField(
            model_name="concurrencyrollup", name="overuse_devices", field=models.PositiveBigIntegerField()
        ),
    ]
