"""``Idempotency-Key`` on every write of the admin API (SPEC section 13): a repeat with the same
key and body returns the first answer; another body is 409 code 2. Keys are kept 24 h.

The record is inserted before the write runs, in the write's transaction. A concurrent request
with the same key blocks on the unique index until the first commits (PostgreSQL; SQLite runs
one writer at a time), then reads the stored answer: 20 retries at once issue one license. A
first request that fails with a 500 rolls its record back, so a retry runs again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from api.models import IdempotencyRecord
from devices.outcomes import IDEMPOTENCY_CONFLICT, INVALID_REQUEST, Refusal
from licenses.models import ApiToken

KEPT = timedelta(hours=24)
HEADER = "Idempotency-Key"


def _digest(request: HttpRequest) -> str:
    h = hashlib.sha256()
    h.update(f"{request.method} {request.path}\n".encode())
    h.update(request.body or b"")
    return h.hexdigest()


def _answer(fn: Callable[[], tuple[int, dict]]) -> tuple[int, dict]:
    """The write's status and body; a refusal is an answer too (stored like a success)."""
    try:
        with transaction.atomic():
            return fn()
    except Refusal as refusal:
        from api.errors import HTTP_STATUS

        return HTTP_STATUS[refusal.code], {"error": refusal.detail()}


def run_write(
    request: HttpRequest, token: ApiToken, fn: Callable[[], tuple[int, dict]], *, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Run ``fn`` (which returns ``(status, body)`` or raises a Refusal) once per key."""
    key = request.headers.get(HEADER)
    if key is None:
        return _answer(fn)
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Refusal(INVALID_REQUEST, "invalid Idempotency-Key", fields={HEADER: "1 to 255 printable characters"})
    digest = _digest(request)
    for _ in range(3):
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.filter(token=token, key=key, created_at__lte=now - KEPT).delete()
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        token=token, key=key, request_digest=digest, created_at=now
                    )
                status, body = _answer(fn)
                record.status_code, record.response_body = status, json.dumps(body, ensure_ascii=False)
                record.save(update_fields=["status_code", "response_body"])
                return status, body
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(token=token, key=key, created_at__gt=now - KEPT).first()
            if existing is None or existing.status_code is None:
                continue  # the first request rolled back, or the record just expired: run again
            if existing.request_digest != digest:
                raise Refusal(IDEMPOTENCY_CONFLICT, "this Idempotency-Key was used with another request body") from None
            return existing.status_code, json.loads(existing.response_body)
    raise Refusal(IDEMPOTENCY_CONFLICT, "this Idempotency-Key is in use by a request that has not finished")


def purge_idempotency_records(*, now: datetime) -> int:
    return IdempotencyRecord.objects.filter(created_at__lte=now - KEPT).delete()[0]
