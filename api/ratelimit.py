"""Rate limits of the device API (SPEC section 6): per device and per client address.

Fixed windows counted in the Django cache (Redis when REDIS_URL is set, so every web process
shares the counts; the local-memory cache otherwise). Each window has its own key, named by the
window number, created with ``cache.add`` (atomic: only the first request of a window creates it)
and counted with ``cache.incr`` (atomic in Redis and in the local-memory cache); the key expires
shortly after its window ends, so nothing needs cleaning up.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

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


def _hit(scope: str, identity: str, rate: Rate, now: float) -> int | None:
    """Count one request in the current window; the seconds until it ends if over the limit."""
    window = int(now // rate.period)
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    key = f"rl:{scope}:{rate.period}:{digest}:{window}"
    # Outlives its window by a margin: with clock skew between web hosts a late request may still
    # count in it, and Redis INCR on a key that has just expired would recreate it without expiry.
    timeout = rate.period - int(now % rate.period) + 10
    if cache.add(key, 1, timeout=timeout):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: this request opens it again
            cache.add(key, 1, timeout=timeout)
            count = 1
    if count <= rate.limit:
        return None
    return max(1, math.ceil((window + 1) * rate.period - now))


def check_rate_limit(*, license_key: str, device_uuid: str, address: str, now: float | None = None) -> int | None:
    """None when the request may proceed, otherwise the seconds to put in ``Retry-After``.

    Counts the request against its device (license key + device_uuid) at ``API_RATE_LIMIT`` and
    against its client address at ``API_RATE_LIMIT_ADDRESS``; settings are read on every call.
    ``now`` (Unix seconds) is for tests; entry points leave it to the clock."""
    now = time.time() if now is None else float(now)
    device_rate = parse_rate(getattr(settings, "API_RATE_LIMIT", "60/m"), setting="API_RATE_LIMIT")
    address_rate = parse_rate(getattr(settings, "API_RATE_LIMIT_ADDRESS", "6000/m"), setting="API_RATE_LIMIT_ADDRESS")
    waits = []
    if device_rate is not None:
        waits.append(_hit("dev", f"{license_key}\x00{device_uuid}", device_rate, now))
    if address_rate is not None:
        waits.append(_hit("addr", str(address or ""), address_rate, now))
    waits = [w for w in waits if w is not None]
    return max(waits) if waits else None
