"""Project protection (SPEC section 6): the session password and the validation fields.

The session password is stored as a keyed HMAC-SHA256 (``licenses.protection``, which also sets
it): one HMAC per request costs microseconds (no work factor), compared with
``hmac.compare_digest``.

Validation fields are lists on the project: allowed domains for ``web`` clients (written like an
item's domain, matched by the domain unit of ``licenses.domains``; refusal 103), allowed app ids
for ``mobile`` clients (exact; 114), allowed process names for ``desktop``, ``embedded`` and
``server`` clients (exact, case-insensitive on Windows platforms; 114). An empty list does not
restrict its client type."""

from __future__ import annotations

import hmac

from devices.outcomes import DOMAIN_MISMATCH, SESSION_PASSWORD_INVALID, VALIDATION_FIELD_MISMATCH, Verdict
from licenses.domains import domain_matches
from licenses.models import Project
from licenses.protection import (  # noqa: F401 (the setters, for callers above the devices layer)
    ProtectionError,
    password_digest,
    protection_state,
    set_protection,
    split_lines,
)

PROCESS_CLIENTS = ("desktop", "embedded", "server")


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
    return bool(platform and platform.strip().lower().startswith("win"))


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
