"""Helpers shared by the admin API's routes: the JSON answer, the write wrapper (scope check,
``Idempotency-Key``, audit actor) and time filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from api.admin.auth import require_write, token_of
from api.admin.idempotency import run_write
from api.errors import json_response
from devices.outcomes import INVALID_REQUEST, Refusal
from licenses.clock import parse_rfc3339


def write(request: HttpRequest, fn: Callable[[], tuple[int, dict]], *, now: datetime | None = None) -> JsonResponse:
    """A write: write scope required, then ``fn`` once per Idempotency-Key."""
    token = token_of(request)
    require_write(token)
    status, body = run_write(request, token, fn, now=now or timezone.now())
    return json_response(body, status)


def actor(request: HttpRequest) -> str:
    """The audit log's actor of a write through the API: the token and its creator."""
    return token_of(request).actor_name()


def time_filter(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as e:
        raise Refusal(INVALID_REQUEST, f"invalid {name}", fields={name: str(e)}) from None


def invalid(fields: dict[str, str]) -> Refusal:
    name, reason = next(iter(fields.items()))
    return Refusal(INVALID_REQUEST, f"invalid request: {name} {reason}", fields=fields)
