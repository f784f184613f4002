"""Cursor pagination of every list (SPEC section 13): ``{"data": [...], "next_cursor": ... |
null}``, newest first (by creation time, then id), ``?limit=`` up to 500 (default 100), ``?cursor=``
for the next page. A cursor is opaque to clients: the last row's time and id, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from devices.outcomes import INVALID_REQUEST, Refusal

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


def _encode(value: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, length: int) -> list:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        if not isinstance(value, list) or len(value) != length:
            raise ValueError
        return value
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise Refusal(INVALID_REQUEST, "invalid cursor", fields={"cursor": "is not a cursor of this list"}) from None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Refusal(INVALID_REQUEST, "invalid limit", fields={"limit": f"must be 1 to {MAX_LIMIT}"})
    return limit


def page(
    qs: QuerySet, *, limit: int | None, cursor: str | None, render: Callable[[Any], dict], when: str = "created_at"
) -> dict[str, Any]:
    """One page of ``qs``, newest first: by ``when`` (a date-time field), then by primary key."""
    limit = check_limit(limit)
    qs = qs.order_by(f"-{when}", "-pk")
    if cursor:
        at, pk = _decode(cursor, 2)
        try:
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None:
                raise ValueError("naive")
            qs = qs.filter(Q(**{f"{when}__lt": moment}) | Q(**{when: moment, "pk__lt": pk}))
            rows = list(qs[: limit + 1])
        except (TypeError, ValueError, ValidationError):
            raise Refusal(
                INVALID_REQUEST, "invalid cursor", fields={"cursor": "is not a cursor of this list"}
            ) from None
    else:
        rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {
        "data": [render(row) for row in rows],
        "next_cursor": _encode([getattr(last, when).isoformat(), last.pk]) if more and last else None,
    }


def page_list(rows: list[dict], *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of rows computed in full (already newest first): the cursor is an offset."""
    limit = check_limit(limit)
    start = _decode(cursor, 1)[0] if cursor else 0
    if not isinstance(start, int) or start < 0:
        raise Refusal(INVALID_REQUEST, "invalid cursor", fields={"cursor": "is not a cursor of this list"})
    chunk = rows[start : start + limit]
    return {"data": chunk, "next_cursor": _encode([start + limit]) if start + limit < len(rows) else None}
