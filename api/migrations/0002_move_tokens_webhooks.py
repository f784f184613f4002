"""ApiToken and WebhookEndpoint now live in ``licenses``, WebhookDelivery and WebhookAttempt in
``usage`` (their migrations took over the tables and renamed them): here they leave the ``api``
state without touching the database, IdempotencyRecord's token points at ``licenses.ApiToken``
(the same table), and their content types move with them so that permissions and admin log
entries keep pointing at the same rows."""

import django.db.models.deletion
from django.db import migrations, models

MOVED = {"apitoken": "licenses", "webhookendpoint": "licenses", "webhookdelivery": "usage", "webhookattempt": "usage"}


def move_content_types(apps, schema_editor, *, backwards=False):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model, app in MOVED.items():
        old, new = (app, "api") if backwards else ("api", app)
        if not ContentType.objects.using(db).filter(app_label=new, model=model).exists():
            ContentType.objects.using(db).filter(app_label=old, model=model).update(app_label=new)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_tokens_webhooks"),
        ("licenses", "0005_apitoken_webhookendpoint_from_api"),
        ("usage", "0008_webhookdelivery_webhookattempt_from_api"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="idempotencyrecord",
                    name="token",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="idempotency_records",
                        to="licenses.apitoken",
                    ),
                ),
                migrations.DeleteModel(name="WebhookAttempt"),
                migrations.DeleteModel(name="WebhookDelivery"),
                migrations.DeleteModel(name="WebhookEndpoint"),
                migrations.DeleteModel(name="ApiToken"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, lambda apps, editor: move_content_types(apps, editor, backwards=True)),
    ]
