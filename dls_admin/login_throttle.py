"""Login throttling for the portal and the admin (brute-force and password-spraying defense).

Failed logins (Django's ``user_login_failed`` signal, sent by every ``authenticate()`` that
fails) are counted in the cache per username and per client address. Once a counter reaches its
limit within the window, ``LoginThrottleBackend`` (first in ``AUTHENTICATION_BACKENDS``) refuses
every further attempt for that username or address before any password is checked, even a right
one, until the window ends. It refuses by raising ``LoginThrottled``, a ``ValidationError``: the
login forms (the portal's and the admin's ``AuthenticationForm``) call ``authenticate()`` inside
``clean()``, so the message appears on the form as it is. A successful login clears its
username's counter (not the address's).

Settings: ``LOGIN_FAILURE_LIMIT`` (per username, default 5), ``LOGIN_FAILURE_LIMIT_ADDRESS``
(per address, default 30), ``LOGIN_FAILURE_WINDOW`` (seconds, default 900); 0 turns a limit off.
Counters live in the Django cache: Redis in production, so every web process shares them."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError

logger = logging.getLogger("dls_admin.login_throttle")

_PREFIX = "loginfail"


class LoginThrottled(ValidationError):
    """Too many failed logins; shown on the login form as a non-field error."""

    def __init__(self, wait_s: int):
        minutes = max(1, math.ceil(wait_s / 60))
        super().__init__(
            "Too many failed login attempts for this account or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            code="login_throttled",
        )
        self.wait_s = wait_s


def _limits() -> tuple[int, int, int]:
    return (
        int(getattr(settings, "LOGIN_FAILURE_LIMIT", 5)),
        int(getattr(settings, "LOGIN_FAILURE_LIMIT_ADDRESS", 30)),
        max(1, int(getattr(settings, "LOGIN_FAILURE_WINDOW", 900))),
    )


def _key(scope: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{_PREFIX}:{scope}:{digest}"


def _username(credentials: dict) -> str:
    from django.contrib.auth import get_user_model

    field = get_user_model().USERNAME_FIELD
    return str(credentials.get(field) or credentials.get("username") or "").strip().lower()


def _address(request) -> str:
    return (request.META.get("REMOTE_ADDR", "") if request is not None else "") or "unknown"


def _counters(username: str, address: str) -> list[tuple[str, int]]:
    user_limit, address_limit, _ = _limits()
    counters = []
    if user_limit > 0 and username:
        counters.append((_key("user", username), user_limit))
    if address_limit > 0:
        counters.append((_key("addr", address), address_limit))
    return counters


def record_failure(*, username: str, address: str, now: float | None = None) -> None:
    """Count one failed login. A counter's window starts at its first failure."""
    _, _, window = _limits()
    now = time.time() if now is None else now
    for key, _limit in _counters(username, address):
        until = cache.get(f"{key}:until")
        if until is not None and until <= now:  # the window ended before the cache expired it
            cache.delete_many([key, f"{key}:until"])
        # The count and the window's end; add() creates the count atomically, incr() does not
        # reset the expiry in Redis or locmem, so the window is fixed from the first failure.
        if cache.add(key, 1, timeout=window):
            cache.set(f"{key}:until", now + window, timeout=window)
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)
            cache.set(f"{key}:until", now + window, timeout=window)


def throttled_for(*, username: str, address: str, now: float | None = None) -> int | None:
    """None when a login may be tried; otherwise the seconds until it may."""
    now = time.time() if now is None else now
    waits = []
    for key, limit in _counters(username, address):
        count = cache.get(key) or 0
        if count >= limit:
            # The window's end is checked here too, not only left to the cache's expiry, so the
            # throttle ends on time whatever the cache's clock granularity.
            until = cache.get(f"{key}:until") or now + _limits()[2]
            if until > now:
                waits.append(max(1, math.ceil(until - now)))
    return max(waits) if waits else None


def clear(*, username: str) -> None:
    key = _key("user", username.strip().lower())
    cache.delete_many([key, f"{key}:until"])


class LoginThrottleBackend:
    """Checks no password: refuses (``LoginThrottled``) while the username or the address is
    throttled, otherwise lets the next backend decide."""

    def authenticate(self, request, **credentials):
        username, address = _username(credentials), _address(request)
        wait = throttled_for(username=username, address=address)
        if wait is not None:
            logger.warning("login refused: throttled", extra={"username": username, "address": address, "wait_s": wait})
            raise LoginThrottled(wait)
        return None

    def get_user(self, user_id):
        # A session stamped with this backend (force_login picks the first backend) still
        # resolves its user, the same way the model backend does.
        from django.contrib.auth.backends import ModelBackend

        return ModelBackend().get_user(user_id)


def _on_login_failed(sender, credentials, request=None, **kwargs):
    username, address = _username(credentials), _address(request)
    record_failure(username=username, address=address)
    logger.info("login failed", extra={"username": username, "address": address})


def _on_logged_in(sender, request, user, **kwargs):
    clear(username=user.get_username())


def connect_signals() -> None:
    user_login_failed.connect(_on_login_failed, dispatch_uid="dls_admin.login_throttle.failed")
    user_logged_in.connect(_on_logged_in, dispatch_uid="dls_admin.login_throttle.logged_in")
