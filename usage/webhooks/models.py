"""Webhook deliveries and their attempts (SPEC section 14): one event (``licenses.OutboxEvent``)
for one endpoint (``licenses.WebhookEndpoint``), a job of ``usage.webhooks``. ``usage.models``
imports this module so that Django registers the models in the ``usage`` app."""

from __future__ import annotations

from django.db import models

from licenses.models import OutboxEvent, WebhookEndpoint


class WebhookDelivery(models.Model):
    """One event for one endpoint, retried with backoff until a 2xx or the last attempt. A worker
    claims it by setting ``lease_until``; a worker that dies leaves the lease to lapse and the
    delivery is picked again (at least once)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUSES = [(PENDING, "pending"), (SUCCEEDED, "succeeded"), (FAILED, "failed")]

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    attempt_at = models.DateTimeField()  # when the next attempt is due
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_unique")]
        indexes = [models.Index(fields=["status", "attempt_at"], name="webhook_delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} {self.status}"


class WebhookAttempt(models.Model):
    """Every attempt of a delivery: when, the status code (null: no answer), latency, and the
    first 1 KiB of the answer or the error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=1024, blank=True, default="")
    error = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-attempted_at", "-id"]
