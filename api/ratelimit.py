"""Rate limits of the device API (SPEC section 6): per device and per client address.

Fixed windows counted in the Django cache (Redis when REDIS_URL is set, so every web process
shares the counts; the local-memory cache otherwise). Each window has its own key, named by the
window number, created with ``cache.add`` (atomic: only the first request of a window creates it)
and counted with ``cache.incr`` (atomic in the local-memory cache); in Redis both windows of a
request are created and counted in one round trip (``_count_all``: a script of ``SET NX EX`` and
``INCR`` per key). The key expires shortly after its window ends, so nothing needs cleaning up.

The limits fail soft: when the cache raises (Redis down, or slower than its socket timeouts),
the request is counted in this process's own memory instead (the limit then holds per process,
not per deployment), the failure is logged (at most once a minute per process) and counted in
``degradation``, and ``/healthz`` reports it. A request is never refused, or failed, because the
cache is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("api.ratelimit")

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int  # requests per window
    period: int  # window length in seconds


def parse_rate(text: str, *, setting: str = "rate") -> Rate | None:
    """``"60/m"`` -> Rate(60, 60); ``"10/5s"`` -> Rate(10, 5); ``"0"`` or empty -> None (off)."""
    text = str(text or "").strip().lower()
    if text in ("", "0", "off", "none"):
        return None
    match = _RATE_RE.match(text)
    if not match or match.group(3) not in _UNITS:
        raise ImproperlyConfigured(f"{setting}={text!r}: expected N/s, N/m, N/h or N/d, or 0 to turn it off")
    limit = int(match.group(1))
    if limit == 0:
        return None
    period = int(match.group(2) or 1) * _UNITS[match.group(3)]
    if period <= 0:
        raise ImproperlyConfigured(f"{setting}={text!r}: the period must be positive")
    return Rate(limit=limit, period=period)


def _count_in_cache(key: str, timeout: int) -> int:
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens it again
        cache.add(key, 1, timeout=timeout)
        return 1


# Both windows of a request in one Redis command: per key ``SET key 0 EX timeout NX`` then
# ``INCR key``. A script runs atomically, so a key is never incremented without its expiry.
_COUNT_SCRIPT = """local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'EX', ARGV[i], 'NX')
  counts[i] = redis.call('INCR', key)
end
return counts"""
_scripts: list = []  # redis-py's Script (its SHA1), made with the first client
# The write client of each Redis cache backend (Django makes a backend per thread): Django's
# ``get_client`` builds a new redis-py client on every call, 0.1 ms of CPU; this one shares the
# backend's connection pool, which reconnects after a failure by itself.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _count_all(keys: list[tuple[str, int]]) -> list[int]:
    """Count one request in each ``(key, timeout)`` window. In Redis one round trip for all of
    them: ``_COUNT_SCRIPT`` by its SHA1 (``EVALSHA``; redis-py loads it again if the server has
    forgotten it), where ``cache.add`` and ``cache.incr`` took three round trips per key
    (``incr`` checks that the key exists first). A ``MULTI`` pipeline of the same commands, on a
    client made anew each time, cost 0.45-0.50 ms of this process's CPU a request, the script
    0.16-0.17 ms (docs/benchmarks.md,
    "Web CPU per request"). The keys and the stored integers are the cache's own
    (``make_and_validate_key``; Django stores an int as is)."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return [_count_in_cache(key, timeout) for key, timeout in keys]
    client = _clients.get(backend._cache)
    if client is None:
        client = _clients[backend._cache] = backend._cache.get_client(write=True)
    if not _scripts:
        _scripts.append(client.register_script(_COUNT_SCRIPT))
    names = [backend.make_and_validate_key(key) for key, _ in keys]
    return [int(n) for n in _scripts[0](keys=names, args=[timeout for _, timeout in keys], client=client)]


class _LocalCounts:
    """Per-process fixed-window counts, for when the shared cache is unreachable."""

    def __init__(self, max_keys: int = 100_000):
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys

    def count(self, key: str, expires: float, now: float) -> int:
        with self._lock:
            if len(self._counts) >= self._max_keys:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                if len(self._counts) >= self._max_keys:  # a flood of distinct keys: start over
                    self._counts.clear()
            count, until = self._counts.get(key, (0, expires))
            if until <= now:
                count, until = 0, expires
            self._counts[key] = (count + 1, until)
            return count + 1


_local = _LocalCounts()
# Cache failures seen by this process: {"errors": n, "last_error": "...", "last_at": unix time}.
degradation: dict[str, object] = {"errors": 0, "last_error": None, "last_at": None}
_degradation_lock = threading.Lock()
_LOG_EVERY_S = 60
# After a failure the cache is left alone this long: with Redis hung, only one request per
# process and pause pays the socket timeout, the others count locally at once.
CACHE_RETRY_AFTER_S = 5.0
_breaker = {"skip_cache_until": 0.0}


def _degraded(exc: Exception, now: float) -> None:
    with _degradation_lock:
        degradation["errors"] = int(degradation["errors"]) + 1  # type: ignore[call-overload]
        last_at = degradation["last_at"]
        degradation["last_error"] = f"{type(exc).__name__}: {exc}"[:200]
        degradation["last_at"] = now
        _breaker["skip_cache_until"] = time.monotonic() + CACHE_RETRY_AFTER_S
        log = last_at is None or now - float(last_at) >= _LOG_EVERY_S  # type: ignore[arg-type]
    if log:
        logger.warning(
            "rate limits degraded: the cache failed, counting per process",
            extra={"cache_errors": degradation["errors"], "error": degradation["last_error"]},
        )


def reset_degradation() -> None:
    """Forget the failures, the local counts and the pause (tests that break the cache)."""
    with _degradation_lock:
        degradation.update(errors=0, last_error=None, last_at=None)
        _breaker["skip_cache_until"] = 0.0
    with _local._lock:
        _local._counts.clear()


def _window(scope: str, identity: str, rate: Rate, now: float) -> tuple[str, int, int]:
    """The key of the current window of ``identity`` in ``scope``, its timeout and the window."""
    window = int(now // rate.period)
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    # Outlives its window by a margin: with clock skew between web hosts a late request may still
    # count in it.
    timeout = rate.period - int(now % rate.period) + 10
    return f"rl:{scope}:{rate.period}:{digest}:{window}", timeout, window


def hits(limits: list[tuple[str, str, Rate]], now: float) -> list[int | None]:
    """``hit`` for several ``(scope, identity, rate)`` at once (one cache round trip in Redis)."""
    windows = [_window(scope, identity, rate, now) for scope, identity, rate in limits]
    keys = [(key, timeout) for key, timeout, _ in windows]
    if time.monotonic() < _breaker["skip_cache_until"]:
        counts = [_local.count(key, now + timeout, now) for key, timeout in keys]
    else:
        try:
            counts = _count_all(keys)
        except Exception as exc:  # the cache itself failed: count here, never fail the request
            _degraded(exc, now)
            counts = [_local.count(key, now + timeout, now) for key, timeout in keys]
    waits: list[int | None] = []
    for (_, _, rate), (_, _, window), count in zip(limits, windows, counts, strict=True):
        waits.append(None if count <= rate.limit else max(1, math.ceil((window + 1) * rate.period - now)))
    return waits


def hit(scope: str, identity: str, rate: Rate, now: float) -> int | None:
    """Count one request of ``identity`` in the current window of ``scope``; None while within
    ``rate``, otherwise the seconds until the window ends. Also used by the password-reset form."""
    return hits([(scope, identity, rate)], now)[0]


_hit = hit  # the admin API's per-token limit imports it under this name (api/admin/auth.py)


def check_rate_limit(*, license_key: str, device_uuid: str, address: str, now: float | None = None) -> int | None:
    """None when the request may proceed, otherwise the seconds to put in ``Retry-After``.

    Counts the request against its device (license key + device_uuid) at ``API_RATE_LIMIT`` and
    against its client address at ``API_RATE_LIMIT_ADDRESS``; settings are read on every call.
    ``now`` (Unix seconds) is for tests; entry points leave it to the clock."""
    now = time.time() if now is None else float(now)
    device_rate = parse_rate(getattr(settings, "API_RATE_LIMIT", "60/m"), setting="API_RATE_LIMIT")
    address_rate = parse_rate(getattr(settings, "API_RATE_LIMIT_ADDRESS", "6000/m"), setting="API_RATE_LIMIT_ADDRESS")
    limits = []
    if device_rate is not None:
        limits.append(("dev", f"{license_key}\x00{device_uuid}", device_rate))
    if address_rate is not None:
        limits.append(("addr", str(address or ""), address_rate))
    known = [w for w in hits(limits, now) if w is not None] if limits else []
    return max(known) if known else None
