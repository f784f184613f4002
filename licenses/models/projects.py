"""Projects and their license keys (SPEC section 2); protection fields (SPEC section 6)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.db import models

from .organizations import Organization

if TYPE_CHECKING:
    from .licenses import LicenseItem


def new_license_key() -> str:
    """Opaque, URL-safe, 192 bits from the OS CSPRNG, never starting with ``-`` (SPEC section 2:
    keys are passed as command-line arguments). A draw that starts with ``-`` is dropped and drawn
    again (one in 64), so every key left is still uniform over the keys allowed."""
    while True:
        key = secrets.token_urlsafe(24)
        if not key.startswith("-"):
            return key


class Project(models.Model):
    """A named group of items of one organization with one license key (DLS: handshake code)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(max_length=128)
    license_key = models.CharField(max_length=64, unique=True, default=new_license_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Key rotation (SPEC section 2): the key before the last rotation works until it expires.
    previous_license_key = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    previous_key_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Project protection (SPEC section 6): an HMAC-SHA256 of the session password under the
    # server's protection key (devices/protection.py), never the password; "" for none.
    session_password_digest = models.CharField(max_length=64, blank=True, default="", editable=False)
    # Validation fields: lists of allowed values; an empty list does not restrict its client type.
    allowed_domains = models.JSONField(default=list, blank=True)
    allowed_app_ids = models.JSONField(default=list, blank=True)
    allowed_process_names = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="project_name_unique")]

    def __str__(self) -> str:
        return self.name

    def items_in_order(self) -> models.QuerySet[LicenseItem]:
        """This project's items in consumption order (SPEC section 2; see
        ``LicenseItemQuerySet.in_consumption_order``)."""
        return self.items.all().in_consumption_order()
