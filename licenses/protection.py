"""Setting a project's protection (SPEC section 6): the session password, stored as HMAC-SHA256
under a server secret (``PROTECTION_KEY``, or a key derived from ``SECRET_KEY`` when that is not
set), never as the password, so that a copy of the database alone does not reveal it; and the
validation-field lists. The admin, the portal and the admin API call ``set_protection``, which
audits each change as ``project.protection``; ``devices.protection`` checks requests against them.
Changing the secret invalidates every stored password (owners set them again)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from .audit import record_audit
from .domains import item_domain_error
from .models import Project

MAX_LIST = 100  # values per validation field


def _secret() -> bytes:
    key = getattr(settings, "PROTECTION_KEY", "") or ""
    if key:
        return key.encode()
    # Derived, so that the session-password key is not SECRET_KEY itself.
    return hmac.new(settings.SECRET_KEY.encode(), b"dls-admin session password v1", hashlib.sha256).digest()


def password_digest(password: str) -> str:
    return hmac.new(_secret(), password.encode("utf-8"), hashlib.sha256).hexdigest()


class ProtectionError(ValueError):
    """Values that cannot be saved: ``errors`` maps a field to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _clean_list(values: Iterable[str], field: str, errors: dict[str, str]) -> list[str]:
    cleaned: list[str] = []
    for raw in values:
        value = str(raw).strip()
        if not value:
            continue
        if len(value) > 255 or not value.isprintable():
            errors[field] = f"{value[:40]!r} must be at most 255 printable characters"
            continue
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_LIST:
        errors[field] = f"at most {MAX_LIST} values"
    return cleaned


def clean_domains(values: Iterable[str], errors: dict[str, str]) -> list[str]:
    """Allowed domains as written, each checked like an item's domain (``*.acme.com``)."""
    domains = _clean_list(values, "allowed_domains", errors)
    for domain in domains:
        problem = item_domain_error(domain)
        if problem:
            errors["allowed_domains"] = f"{domain}: {problem}"
    return domains


def split_lines(text: str) -> list[str]:
    """One value a line (commas also separate), as the admin and the project page write lists."""
    return [v for line in (text or "").splitlines() for v in line.split(",")]


def protection_state(project: Project) -> dict[str, Any]:
    """What the audit log records: whether a password is set (never the password or its digest)."""
    return {
        "session_password": bool(project.session_password_digest),
        "allowed_domains": list(project.allowed_domains),
        "allowed_app_ids": list(project.allowed_app_ids),
        "allowed_process_names": list(project.allowed_process_names),
    }


def set_protection(
    project: Project,
    *,
    actor,
    now: datetime,
    session_password: str | None = None,
    clear_session_password: bool = False,
    allowed_domains: Iterable[str] | None = None,
    allowed_app_ids: Iterable[str] | None = None,
    allowed_process_names: Iterable[str] | None = None,
) -> Project:
    """Set a project's protection, audited as ``project.protection``. ``None`` leaves a value as
    it is; ``session_password`` sets a new one, ``clear_session_password`` removes it. Raises
    ``ProtectionError`` (nothing changed) for values that cannot be saved."""
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    if session_password is not None and session_password != "":
        if len(session_password) > 255:
            errors["session_password"] = "at most 255 characters"
        else:
            changes["session_password_digest"] = password_digest(session_password)
    elif clear_session_password:
        changes["session_password_digest"] = ""
    if allowed_domains is not None:
        changes["allowed_domains"] = clean_domains(allowed_domains, errors)
    if allowed_app_ids is not None:
        changes["allowed_app_ids"] = _clean_list(allowed_app_ids, "allowed_app_ids", errors)
    if allowed_process_names is not None:
        changes["allowed_process_names"] = _clean_list(allowed_process_names, "allowed_process_names", errors)
    if errors:
        raise ProtectionError(errors)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        before = protection_state(locked)
        for name, value in changes.items():
            setattr(locked, name, value)
        if changes:
            locked.save(update_fields=list(changes))
        after = protection_state(locked)
        if before != after or "session_password_digest" in changes:
            record_audit(actor=actor, action="project.protection", obj=locked, before=before, after=after)
    for name, value in changes.items():
        setattr(project, name, value)
    return project
