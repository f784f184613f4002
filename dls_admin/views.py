"""Operations endpoints: the health check for load balancers and orchestrators, and a trivial
JSON endpoint that the API benchmark uses as its baseline."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from api import ratelimit

logger = logging.getLogger("dls_admin.healthz")


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

    timeout = float(getattr(settings, "CACHE_SOCKET_TIMEOUT", 0.25))
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        logger.warning("health check: redis failed: %s", exc)
        return f"error: {type(exc).__name__}"
    return "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """``200 {"status": "ok", "database": "ok", "redis": "ok" | "not configured"}``.

    Redis down is a degradation, not a failure: the device API and logins keep serving (rate
    limits count per process, jobs wait), so the answer stays 200 with ``"status": "degraded"``,
    ``"degraded": ["redis"]`` and this process's count of rate-limit cache failures, and the load
    balancer keeps the process in rotation. The database down is a failure: 503 with
    ``"status": "error"`` and ``"failed": ["database"]``."""
    checks = {"database": check_database(), "redis": check_redis()}
    body: dict[str, object] = {"status": "ok", **checks}
    errors = int(ratelimit.degradation["errors"])  # type: ignore[call-overload]
    if errors:
        body["rate_limit_cache_errors"] = errors
    if checks["redis"].startswith("error"):
        body["status"] = "degraded"
        body["degraded"] = ["redis"]
    if checks["database"] != "ok":
        body["status"] = "error"
        body["failed"] = ["database"]
        return JsonResponse(body, status=503)
    return JsonResponse(body, status=200)


@never_cache
@require_safe
def ping(request: HttpRequest) -> JsonResponse:
    """Touches nothing (no database, no cache): the benchmark's baseline for one request through
    the same server, middleware and JSON encoding."""
    return JsonResponse({"pong": True})
