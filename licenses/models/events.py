"""The webhook outbox (SPEC section 14); ``licenses.events.emit`` writes it."""

from __future__ import annotations

from django.db import models

from .organizations import Organization


class OutboxEvent(models.Model):
    """A webhook event (SPEC section 14), written by ``licenses.events.emit`` in the same
    transaction as the change it describes; ``usage.webhooks`` fans it out to the endpoints that
    subscribe to it and delivers it. ``event_id`` is the ``webhook-id`` of every delivery."""

    event_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=64)
    # The organization whose data it is; null for nobody's (staff endpoints still get it).
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_events"
    )
    data = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    # Set once the event has been fanned out to the endpoints' deliveries.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["dispatched_at", "id"], name="outbox_undispatched_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
