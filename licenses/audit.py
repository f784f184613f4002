"""The audit log: who did what to which object, when, with its state before and after.

Every write of the staff's (issuing services, admin saves, portal changes) appends a row with
``record_audit``. The model is defined here, with its writer (``licenses.models`` imports it),
so this module imports the other models only when it runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Model


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the audit log cannot be changed")

    def delete(self):
        raise PermissionError("the audit log cannot be changed")


class AuditLog(models.Model):
    """Who did what to which object, when, with the state before and after. Append-only."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=128)
    organization = models.ForeignKey("licenses.Organization", null=True, blank=True, on_delete=models.SET_NULL)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("the audit log cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log cannot be changed")


def _actor_fields(actor) -> dict[str, Any]:
    """``actor`` is a user, a plain name (the command line: ``cli:<os user>``), or None (system)."""
    if actor is None:
        return {"actor": None, "actor_name": "system"}
    if isinstance(actor, str):
        return {"actor": None, "actor_name": actor[:150]}
    if getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_name": actor.get_username()[:150]}
    return {"actor": None, "actor_name": "anonymous"}


def organization_of(obj):
    """The organization an object belongs to (an Organization, or None)."""
    from .models import LicenseItem, Organization

    if isinstance(obj, Organization):
        return obj
    if isinstance(obj, LicenseItem):
        return obj.license.organization if obj.license_id else None
    organization_id = getattr(obj, "organization_id", None)
    if organization_id:
        return obj.organization
    return None


def object_id_of(obj) -> str:
    from .models import License

    if isinstance(obj, License):
        return obj.license_id
    return str(obj.pk)


def record_audit(
    *, actor, action: str, obj, before, after, organization=None, object_id: str | None = None
) -> AuditLog:
    """Append who did what to which object, with its state before and after (JSON-safe dicts).

    ``object_id`` names an object that no longer has a primary key (deleted)."""
    if isinstance(obj, Model):
        object_type = str(obj._meta.model_name)
        object_id = object_id or object_id_of(obj)
        organization = organization or organization_of(obj)
    else:
        object_type, object_id = "", object_id or str(obj)
    return AuditLog.objects.create(
        **_actor_fields(actor),
        action=action,
        object_type=object_type,
        object_id=object_id[:128],
        organization=organization,
        before=before,
        after=after,
    )
