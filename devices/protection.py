"""Project protection (SPEC section 6): the session password and the validation fields.

The session password is stored as HMAC-SHA256 under a server secret (``PROTECTION_KEY``, or a
key derived from ``SECRET_KEY`` when that is not set), never as the password: a copy of the
database alone does not reveal it, and one HMAC per request costs microseconds (no work factor).
It is compared with ``hmac.compare_digest``. Changing the secret invalidates every stored
password (owners set them again).

Validation fields are lists on the project: allowed domains for ``web`` clients (written like an
item's domain, matched by the domain unit of ``licenses.domains``; refusal 103), allowed app ids
for ``mobile`` clients (exact; 114), allowed process names for ``desktop``, ``embedded`` and
``server`` clients (exact, case-insensitive on Windows platforms; 114). An empty list does not
restrict its client type."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from devices.outcomes import DOMAIN_MISMATCH, SESSION_PASSWORD_INVALID, VALIDATION_FIELD_MISMATCH, Verdict
from licenses.audit import record_audit
from licenses.domains import domain_matches, item_domain_error
from licenses.models import Project

MAX_LIST = 100  # values per validation field
PROCESS_CLIENTS = ("desktop", "embedded", "server")


def _secret() -> bytes:
    key = getattr(settings, "PROTECTION_KEY", "") or ""
    if key:
        return key.encode()
    # Derived, so that the session-password key is not SECRET_KEY itself.
    return hmac.new(settings.SECRET_KEY.encode(), b"dls-admin session password v1", hashlib.sha256).digest()


def password_digest(password: str) -> str:
    return hmac.new(_secret(), password.encode("utf-8"), hashlib.sha256).hexdigest()


def session_password_verdict(project: Project, given: str | None) -> Verdict | None:
    """None when the request may go on; the 102 refusal when the project has a session password
    and ``given`` is missing or wrong (a project without one ignores what is sent)."""
    stored = project.session_password_digest
    if not stored:
        return None
    if given is None or given == "":
        return Verdict(None, False, "session_password_missing", "this project requires a session_password", code=102)
    if hmac.compare_digest(password_digest(given), stored):
        return None
    return Verdict(
        None, False, "session_password_wrong", "the session_password is wrong", code=SESSION_PASSWORD_INVALID
    )


def is_windows(platform: str | None) -> bool:
    return bool(platform) and platform.strip().lower().startswith("win")


def validation_verdict(
    project: Project,
    *,
    client_type: str,
    origin: str | None,
    app_id: str | None,
    process_name: str | None,
    platform: str | None,
) -> Verdict | None:
    """The project's validation fields for one authorization: None when allowed, else the 103 or
    114 refusal (``origin``: the normalized origin the domain rules use)."""
    if client_type == "web" and project.allowed_domains:
        if origin and any(domain_matches(d, origin) for d in project.allowed_domains):
            return None
        allowed = ", ".join(project.allowed_domains)
        message = f"origin {origin} is not in the project's allowed domains ({allowed})"
        return Verdict(None, False, "allowed_domains", message, code=DOMAIN_MISMATCH, counts={"allowed": allowed})
    if client_type == "mobile" and project.allowed_app_ids:
        if app_id and app_id in project.allowed_app_ids:
            return None
        what = f"app_id {app_id}" if app_id else "a missing app_id"
        message = f"{what} is not in the project's allowed app ids"
        return Verdict(None, False, "allowed_app_ids", message, code=VALIDATION_FIELD_MISMATCH)
    if client_type in PROCESS_CLIENTS and project.allowed_process_names:
        if process_name:
            if is_windows(platform):
                if process_name.casefold() in {p.casefold() for p in project.allowed_process_names}:
                    return None
            elif process_name in project.allowed_process_names:
                return None
        what = f"process_name {process_name}" if process_name else "a missing process_name"
        message = f"{what} is not in the project's allowed process names"
        return Verdict(None, False, "allowed_process_names", message, code=VALIDATION_FIELD_MISMATCH)
    return None


# --- setting them (admin, portal, admin API) ---------------------------------------------------


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
