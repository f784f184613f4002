"""WebhookDelivery and WebhookAttempt move from ``api`` to ``usage`` (delivery is a job),
keeping every row: created in this app's state only, over the tables ``api`` made, which are
then renamed (``api_webhookdelivery`` -> ``usage_webhookdelivery``, ``api_webhookattempt`` ->
``usage_webhookattempt``). Their foreign keys point at ``licenses.WebhookEndpoint`` and
``licenses.OutboxEvent`` (the same tables as before). ``api.0002_move_tokens_webhooks`` drops
them from the ``api`` state."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0007_concurrency_rollup_devices_bigint"),
        ("licenses", "0005_apitoken_webhookendpoint_from_api"),
        ("api", "0001_tokens_webhooks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[("pending", "pending"), ("succeeded", "succeeded"), ("failed", "failed")],
                                default="pending",
                                max_length=16,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("attempt_at", models.DateTimeField()),
                        ("lease_until", models.DateTimeField(blank=True, null=True)),
                        ("last_status_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("created_at", models.DateTimeField()),
                        ("delivered_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "endpoint",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="deliveries",
                                to="licenses.webhookendpoint",
                            ),
                        ),
                        (
                            "event",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="licenses.outboxevent"
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-id"],
                        "db_table": "api_webhookdelivery",
                        "indexes": [models.Index(fields=["status", "attempt_at"], name="webhook_delivery_due_idx")],
                        "constraints": [
                            models.UniqueConstraint(fields=("endpoint", "event"), name="webhook_delivery_unique")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="WebhookAttempt",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("attempted_at", models.DateTimeField()),
                        ("status_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("latency_ms", models.PositiveIntegerField(default=0)),
                        ("response_excerpt", models.CharField(blank=True, default="", max_length=1024)),
                        ("error", models.CharField(blank=True, default="", max_length=255)),
                        (
                            "delivery",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="attempt_log",
                                to="usage.webhookdelivery",
                            ),
                        ),
                    ],
                    options={"ordering": ["-attempted_at", "-id"], "db_table": "api_webhookattempt"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="webhookdelivery", table=None),
        migrations.AlterModelTable(name="webhookattempt", table=None),
    ]
