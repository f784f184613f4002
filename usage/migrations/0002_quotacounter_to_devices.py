# The quota counters now belong to devices (devices/migrations/0002 renamed the table).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_initial"),
        ("devices", "0002_quotacounter"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="QuotaCounter")]),
    ]
