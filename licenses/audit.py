"""The audit log's writer: who did what to which object, with its state before and after.

Every write of the staff's (issuing services, admin saves, portal changes) appends a row here."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from .models import AuditLog, License, LicenseItem, Organization


def _actor_fields(actor) -> dict[str, Any]:
    """``actor`` is a user, a plain name (the command line: ``cli:<os user>``), or None (system)."""
    if actor is None:
        return {"actor": None, "actor_name": "system"}
    if isinstance(actor, str):
        return {"actor": None, "actor_name": actor[:150]}
    if getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_name": actor.get_username()[:150]}
    return {"actor": None, "actor_name": "anonymous"}


def organization_of(obj) -> Organization | None:
    if isinstance(obj, Organization):
        return obj
    if isinstance(obj, LicenseItem):
        return obj.license.organization if obj.license_id else None
    organization_id = getattr(obj, "organization_id", None)
    if organization_id:
        return obj.organization
    return None


def object_id_of(obj) -> str:
    if isinstance(obj, License):
        return obj.license_id
    return str(obj.pk)


def record_audit(
    *, actor, action: str, obj, before, after, organization=None, object_id: str | None = None
) -> AuditLog:
    """Append who did what to which object, with its state before and after (JSON-safe dicts).

    ``object_id`` names an object that no longer has a primary key (deleted)."""
    if isinstance(obj, Model):
        object_type = obj._meta.model_name
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
