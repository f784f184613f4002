"""ApiToken and WebhookEndpoint move from ``api`` to ``licenses`` (an organization's
configuration sits with the organization), keeping every row: the models are created in this
app's state only, over the tables ``api`` made, and those tables are then renamed to this app's
names (``api_apitoken`` -> ``licenses_apitoken``, ``api_webhookendpoint`` ->
``licenses_webhookendpoint``). Foreign keys that point at them follow the rename.
``api.0002_move_tokens_webhooks`` drops them from the ``api`` state."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import licenses.models


class Migration(migrations.Migration):
    dependencies = [
        ("licenses", "0004_invitation"),
        ("api", "0001_tokens_webhooks"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(blank=True, default="", max_length=100)),
                        (
                            "scope",
                            models.CharField(
                                choices=[("read", "read"), ("write", "write")], default="read", max_length=8
                            ),
                        ),
                        ("prefix", models.CharField(editable=False, max_length=16)),
                        ("digest", models.CharField(editable=False, max_length=64, unique=True)),
                        ("created_by_name", models.CharField(blank=True, default="", max_length=150)),
                        ("created_at", models.DateTimeField()),
                        ("expires_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "organization",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to="licenses.organization",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-created_at", "-id"],
                        "db_table": "api_apitoken",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("scope__in", ["read", "write"])), name="api_token_scope_valid"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="WebhookEndpoint",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("url", models.URLField(max_length=2000)),
                        ("events", models.JSONField(blank=True, default=list)),
                        (
                            "secret",
                            models.CharField(
                                default=licenses.models.new_webhook_secret, editable=False, max_length=100
                            ),
                        ),
                        ("previous_secret", models.CharField(blank=True, default="", editable=False, max_length=100)),
                        ("previous_secret_expires_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("enabled", models.BooleanField(default=True)),
                        ("disabled_reason", models.CharField(blank=True, default="", max_length=255)),
                        ("failing_since", models.DateTimeField(blank=True, null=True)),
                        ("created_by_name", models.CharField(blank=True, default="", max_length=150)),
                        ("created_at", models.DateTimeField()),
                        (
                            "organization",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="webhook_endpoints",
                                to="licenses.organization",
                            ),
                        ),
                    ],
                    options={"ordering": ["-created_at", "-id"], "db_table": "api_webhookendpoint"},
                ),
            ],
            database_operations=[],
        ),
        # The tables get this app's names; the rows stay.
        migrations.AlterModelTable(name="apitoken", table=None),
        migrations.AlterModelTable(name="webhookendpoint", table=None),
    ]
