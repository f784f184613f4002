"""Idempotency records of the admin API (SPEC section 13). The tokens are
``licenses.ApiToken``; webhook endpoints ``licenses.WebhookEndpoint``, their deliveries
``usage.WebhookDelivery``."""

from __future__ import annotations

from django.db import models

from licenses.models import ApiToken


class IdempotencyRecord(models.Model):
    """The first answer to a write with an ``Idempotency-Key`` (SPEC section 13), per token and
    key, kept 24 hours. The row is inserted before the write runs, in its transaction: a
    concurrent request with the same key waits on the unique index and then finds the answer."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)  # method, path and body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_key_unique")]
