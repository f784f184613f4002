"""Operations endpoints: the health check for load balancers and orchestrators, and a trivial
JSON endpoint that the API benchmark uses as its baseline."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger("dls_admin.healthz")

REDIS_TIMEOUT_S = 2.0


def check_database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.error("health check: database failed: %s", exc)
        return f"error: {type(exc).__name__}"
    return "ok"


def check_redis() -> str:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "not configured"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        logger.error("health check: redis failed: %s", exc)
        return f"error: {type(exc).__name__}"
    return "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "ok", "database": "ok", "redis": "ok" | "not configured"}``, or 503 with
    ``"status": "error"`` and the failed dependency's value starting with ``error``."""
    checks = {"database": check_database(), "redis": check_redis()}
    healthy = all(v in ("ok", "not configured") for v in checks.values())
    failed = [name for name, v in checks.items() if v not in ("ok", "not configured")]
    body = {"status": "ok" if healthy else "error", **checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_safe
def ping(request: HttpRequest) -> JsonResponse:
    """Touches nothing (no database, no cache): the benchmark's baseline for one request through
    the same server, middleware and JSON encoding."""
    return JsonResponse({"pong": True})
