"""License key rotation (SPEC section 2): the new key works at once, the old one until the end of
a grace period (default 30 days, 0 for a leaked key), then answers 101. Devices keep their seats:
a seat belongs to the project, not to the key. The admin, the portal and the admin API call
``rotate_key``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from .audit import record_audit
from .clock import rfc3339
from .events import emit
from .models import Project, new_license_key

DEFAULT_GRACE_DAYS = 30
MAX_GRACE_DAYS = 365


def key_hint(key: str | None) -> str:
    """What the audit log and pages show of a key: its first 4 characters."""
    return f"{key[:4]}..." if key else ""


def previous_key_valid(project: Project, now: datetime) -> bool:
    """Whether the key before the last rotation still works at ``now`` (until, not at, its end)."""
    return (
        bool(project.previous_license_key)
        and project.previous_key_expires_at is not None
        and (now < project.previous_key_expires_at)
    )


def rotate_key(project: Project, *, grace_days: int = DEFAULT_GRACE_DAYS, actor, now: datetime) -> Project:
    """Give ``project`` a new key; the current one keeps working until ``now + grace_days``.

    A key rotated out earlier, still in its grace, stops at once: only one old key works at a
    time. Audited as ``project.rotate_key`` (key hints only, never a whole key)."""
    if isinstance(grace_days, bool) or not isinstance(grace_days, int) or not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise ValueError(f"grace_days must be a whole number of days from 0 to {MAX_GRACE_DAYS}")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        before = {
            "key": key_hint(locked.license_key),
            "previous_key": key_hint(locked.previous_license_key),
            "previous_key_expires_at": locked.previous_key_expires_at.isoformat()
            if locked.previous_key_expires_at
            else None,
        }
        old = locked.license_key
        new = new_license_key()
        while Project.objects.filter(previous_license_key=new).exists():  # pragma: no cover (2**-192)
            new = new_license_key()
        locked.previous_license_key = old
        locked.previous_key_expires_at = now + timedelta(days=grace_days)
        locked.license_key = new
        locked.save(update_fields=["license_key", "previous_license_key", "previous_key_expires_at"])
        record_audit(
            actor=actor,
            action="project.rotate_key",
            obj=locked,
            before=before,
            after={
                "key": key_hint(new),
                "previous_key": key_hint(old),
                "previous_key_expires_at": locked.previous_key_expires_at.isoformat(),
                "grace_days": grace_days,
            },
        )
        emit(  # SPEC 14
            "project.key_rotated",
            {
                "organization": locked.organization_id,
                "project": {"id": str(locked.pk), "name": locked.name},
                "old_key_expires_at": rfc3339(locked.previous_key_expires_at),
            },
            organization=locked.organization_id,
            now=now,
        )
    project.license_key = locked.license_key
    project.previous_license_key = locked.previous_license_key
    project.previous_key_expires_at = locked.previous_key_expires_at
    return project
