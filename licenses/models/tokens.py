"""Admin API tokens (SPEC section 13): an organization's (or the staff's) credentials for the
admin API. Shown once, stored as a keyed digest; scopes ``read`` and ``write``; expiry and
revocation. The API's authentication (``api/admin/auth.py``) reads them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..audit import record_audit
from .organizations import Organization

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
