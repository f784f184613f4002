"""Webhook endpoints (SPEC section 14): where an organization (or the staff) wants its events
delivered, with the signing secrets. Saving one through ``usage.webhooks.endpoints`` checks its
URL (the SSRF guard); delivery is a job of ``usage.webhooks``."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from django.db import models

from .organizations import Organization


def new_webhook_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes (the Standard Webhooks form)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    """Where events are delivered: staff endpoints (no organization: every organization's events,
    or one organization's), and an organization's own endpoints."""

    url = models.URLField(max_length=2000)
    # Event types subscribed to; empty means every type.
    events = models.JSONField(default=list, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    secret = models.CharField(max_length=100, default=new_webhook_secret, editable=False)
    # After a rotation the previous secret signs too, until previous_secret_expires_at.
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    # The first failed delivery since the last success: 5 days of that disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def signing_secrets(self, now: datetime) -> list[str]:
        secrets_ = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets_.append(self.previous_secret)
        return secrets_
