"""Organizations, their members, invitations and alert recipients (SPEC sections 2 and 10)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Organization(models.Model):
    # The customer's own id, e.g. "216998" (SPEC section 2); matched by id on import.
    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Membership(models.Model):
    OWNER = "owner"
    VIEWER = "viewer"
    ROLES = [(OWNER, "Owner"), (VIEWER, "Viewer")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLES, default=VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.organization_id}"


class AlertRecipient(models.Model):
    """Where usage alerts and renewal reminders go. With none, they go to the owners."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_recipients")
    email = models.EmailField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "email"], name="alert_recipient_unique")]

    def __str__(self) -> str:
        return self.email


class Invitation(models.Model):
    """An owner's invitation of a member by email (SPEC section 10, "the team"); the link's
    token is stored only as its SHA-256. Used once (``accepted_at``), expires at ``expires_at``
    (licenses.members)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.ROLES, default=Membership.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} ({self.role}) to {self.organization_id}"
