"""Admin API tokens and idempotency records (SPEC section 13); webhook endpoints, deliveries and
their attempts (SPEC section 14). The events themselves are ``licenses.OutboxEvent``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from licenses.models import Organization, OutboxEvent

TOKEN_PREFIX = "dls_"
READ = "read"
WRITE = "write"
SCOPES = [(READ, "read"), (WRITE, "write")]
# last_used_at is written at most this often per token, not on every request.
LAST_USED_EVERY = timedelta(minutes=1)


def token_digest(token: str) -> str:
    """HMAC-SHA256 of the token under a server key: a token is 256 random bits, so a fast keyed
    hash is enough (no work factor per request) and a copy of the database reveals no token."""
    key = (getattr(settings, "API_TOKEN_HASH_KEY", "") or settings.SECRET_KEY).encode()
    return hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable_at(self, now: datetime) -> ApiTokenQuerySet:
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)


class ApiToken(models.Model):
    """A bearer token of the admin API: a staff token (no organization, every organization's
    data, issuing included) or an organization token (that organization only, never issuing)."""

    name = models.CharField(max_length=100, blank=True, default="")
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scope = models.CharField(max_length=8, choices=SCOPES, default=READ)
    # The first characters, shown in lists so that a person can tell tokens apart.
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(scope__in=["read", "write"]), name="api_token_scope_valid")]

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name}".strip()

    @property
    def is_staff_token(self) -> bool:
        return self.organization_id is None

    @property
    def can_write(self) -> bool:
        return self.scope == WRITE

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def revoke(self, *, now: datetime, actor) -> None:
        """Revoke (final), audited; a token already revoked stays as it was."""
        from licenses.audit import record_audit

        if ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now):
            self.revoked_at = now
            record_audit(
                actor=actor,
                action="api_token.revoke",
                obj=self,
                before=None,
                after={"name": self.name, "revoked_at": now.isoformat()},
                organization=self.organization,
            )

    def actor_name(self) -> str:
        """The audit log's actor for a write through this token: the token and its creator."""
        by = self.created_by_name or "system"
        return f"token:{self.pk} {self.name} (by {by})".replace("  ", " ")

    @classmethod
    def create_token(
        cls,
        *,
        scope: str,
        now: datetime,
        organization: Organization | None = None,
        name: str = "",
        expires_at: datetime | None = None,
        created_by=None,
        created_by_name: str = "",
    ) -> tuple[ApiToken, str]:
        """A new token and its secret text, which is never stored and shown only this once."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        if created_by is not None and not created_by_name:
            created_by_name = created_by.get_username()
        token = cls.objects.create(
            name=name,
            organization=organization,
            scope=scope,
            prefix=secret[:10],
            digest=token_digest(secret),
            created_by=created_by,
            created_by_name=created_by_name[:150],
            created_at=now,
            expires_at=expires_at,
        )
        return token, secret


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


def new_webhook_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes (the Standard Webhooks form)."""
    import base64

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

    # The services of api.webhooks as methods, for callers that reach this model through the
    # app registry (the portal sits beside the api package and does not import it).
    @classmethod
    def register(cls, **kwargs) -> tuple[WebhookEndpoint, str]:
        from api.webhooks import create_endpoint

        return create_endpoint(**kwargs)

    def change(self, **kwargs) -> str | None:
        from api.webhooks import update_endpoint

        return update_endpoint(self, **kwargs)

    def as_data(self) -> dict:
        from api.webhooks import endpoint_data

        return endpoint_data(self)

    def subscribes_to(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def signing_secrets(self, now: datetime) -> list[str]:
        secrets_ = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets_.append(self.previous_secret)
        return secrets_


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

    def redeliver(self, *, now: datetime) -> WebhookDelivery:
        from api.webhooks import redeliver

        return redeliver(self, now=now)


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
