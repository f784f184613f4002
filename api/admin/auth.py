"""Bearer tokens of the admin API (SPEC section 13): who is calling, with which scope, and what
they may see. A missing, unknown, expired or revoked token is 401; a token without the scope
(or an organization token issuing) is 403; another organization's object is 404."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from api.ratelimit import _hit, parse_rate
from devices.outcomes import RATE_LIMITED, Refusal
from licenses.models import LAST_USED_EVERY, ApiToken, token_digest

logger = logging.getLogger(__name__)
UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT = 5, 6, 7, 8


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``; sets ``request.auth`` to the ApiToken."""

    openapi_description = "A staff or organization token (SPEC section 13)."

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        now = timezone.now()
        found = ApiToken.objects.select_related("organization").filter(digest=token_digest(token)).first()
        if found is None:
            raise Refusal(UNAUTHENTICATED, "unknown token")
        if found.revoked_at is not None:
            raise Refusal(UNAUTHENTICATED, "this token was revoked")
        if found.expires_at is not None and found.expires_at <= now:
            raise Refusal(UNAUTHENTICATED, "this token has expired")
        _rate_limit(found)
        _touch(found, now)
        return found


def _rate_limit(token: ApiToken) -> None:
    """``ADMIN_API_RATE_LIMIT`` per token (default 600/m), counted in the cache; a cache that
    fails lets the request through (fail soft) rather than lock every integration out."""
    rate = parse_rate(getattr(settings, "ADMIN_API_RATE_LIMIT", "600/m"), setting="ADMIN_API_RATE_LIMIT")
    if rate is None:
        return
    try:
        wait = _hit("admintok", str(token.pk), rate, timezone.now().timestamp())
    except Exception:
        logger.warning("admin API rate limit skipped: the cache failed", exc_info=True)
        return
    if wait is not None:
        raise Refusal(RATE_LIMITED, f"too many requests for this token: retry in {wait} s", retry_after=wait)


def _touch(token: ApiToken, now: datetime) -> None:
    """``last_used_at``, written at most once a minute per token (one conditional UPDATE)."""
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_EVERY:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
    ).update(last_used_at=now)
    token.last_used_at = now


def token_of(request: HttpRequest) -> ApiToken:
    return request.auth  # type: ignore[attr-defined]


def require_write(token: ApiToken) -> None:
    if not token.can_write:
        raise Refusal(FORBIDDEN, "this token has the read scope: writes need a write token")


def require_staff(token: ApiToken, what: str = "this") -> None:
    if not token.is_staff_token:
        raise Refusal(FORBIDDEN, f"{what} needs a staff token: organization tokens never issue")


def not_found(what: str) -> Refusal:
    return Refusal(NOT_FOUND, f"no such {what}")


def visible(qs: QuerySet, token: ApiToken, path: str = "organization_id") -> QuerySet:
    """``qs`` limited to the token's organization (staff tokens see every organization)."""
    if token.is_staff_token:
        return qs
    return qs.filter(**{path: token.organization_id})


def get_visible(qs: QuerySet, token: ApiToken, what: str, path: str = "organization_id", **lookup):
    """One object the token may see, or 404 (another organization's objects do not exist)."""
    obj = visible(qs, token, path).filter(**lookup).first()
    if obj is None:
        raise not_found(what)
    return obj
