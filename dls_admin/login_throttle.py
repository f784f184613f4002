"""Login throttling for the portal and the admin (brute force, password spraying), on django-axes.

Attempts are django-axes ``AccessAttempt`` rows in the database (so logins keep working when Redis
is down), one per (username, client address, user agent), listed in the admin with axes' own
pages and cleared with ``manage.py axes_reset``. Two limits, each per ``LOGIN_FAILURE_WINDOW``:

- ``LOGIN_FAILURE_LIMIT`` (5) password checks per (username, address) pair: a wrong guesser
  locks the account out from their own address only, never for its owner elsewhere;
- ``LOGIN_FAILURE_LIMIT_ADDRESS`` (30) per address over every username (spraying).

Stock axes checks the count before the password and records a failure after it, so simultaneous
attempts all pass the check (measured: 60 threads got 60 password checks against a limit of 5).
Here the check and the count are one step, done before the password is looked at:
``LoginThrottleBackend`` (first in ``AUTHENTICATION_BACKENDS``) takes a lock per client address
(a transaction-scoped advisory lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serializes every
writer already), counts the attempts of the pair and of the address, and either refuses with
``LoginThrottled`` or counts this attempt and lets ``ModelBackend`` check the password. A
success then deletes the pair's attempts (not the rest of the address's). ``LoginThrottled`` is a
``ValidationError``: both login forms call ``authenticate()`` in ``clean()``, so its message,
which says how long to wait and how to reset a forgotten password, shows on the form.

The window starts again at each counted attempt (axes' cool-off); 0 turns a limit off."""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max, Sum

logger = logging.getLogger("dls_admin.login_throttle")


class LoginThrottled(ValidationError):
    """Too many attempts; shown on the login form as a non-field error."""

    def __init__(self, wait_s: int, *, scope: str):
        minutes = max(1, math.ceil(wait_s / 60))
        whom = "for this account from your address" if scope == "pair" else "from your address"
        super().__init__(
            f"Too many failed login attempts {whom}. Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
            "or, if you forgot your password, set a new one with “Forgot your password?” on the portal's login page.",
            code="login_throttled",
        )
        self.wait_s = wait_s
        self.scope = scope


def limits() -> tuple[int, int, timedelta]:
    """(per pair, per address, window); read on every call, so tests and settings changes apply."""
    return (
        int(getattr(settings, "LOGIN_FAILURE_LIMIT", 5)),
        int(getattr(settings, "LOGIN_FAILURE_LIMIT_ADDRESS", 30)),
        timedelta(seconds=max(1, int(getattr(settings, "LOGIN_FAILURE_WINDOW", 900)))),
    )


# axes settings callables (settings.py names them) -----------------------------------------------


def cool_off(request=None) -> timedelta:
    return limits()[2]


def failure_limit(request, credentials) -> int:
    """axes' own limit (its admin and ``is_locked``): the pair's."""
    return limits()[0] or 2**31 - 1


def normalize_username(request, credentials) -> str:
    """Usernames are compared case-insensitively (``Alice`` and ``alice`` share a count)."""
    field = settings.AXES_USERNAME_FORM_FIELD
    raw = (credentials or {}).get(field) or (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = request.POST.get(field)
    return str(raw or "").strip().lower()


# The atomic check-and-count ----------------------------------------------------------------------


def _lock_address(address: str | None) -> None:
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"login:{address}".encode()).digest()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])
    # SQLite: the transaction began with BEGIN IMMEDIATE and holds the database's write lock.


def _wait(attempts, window: timedelta, now: datetime) -> int:
    last = attempts.aggregate(last=Max("attempt_time"))["last"] or now
    return max(1, math.ceil((last + window - now).total_seconds()))


def check_and_count(
    *, username: str, address: str | None, now: datetime, user_agent: str = "", path: str = ""
) -> LoginThrottled | None:
    """Count one attempt of ``username`` from ``address`` at ``now``, or, when the pair or the
    address has used up its attempts in the window, count nothing and return the refusal."""
    pair_limit, address_limit, window = limits()
    if not (pair_limit or address_limit):
        return None
    with transaction.atomic():
        _lock_address(address)
        at_address = (
            AccessAttempt.objects.filter(ip_address=address)
            if address
            else AccessAttempt.objects.filter(ip_address__isnull=True)
        )
        at_address.filter(attempt_time__lte=now - window).delete()  # the window has passed
        pair = at_address.filter(username=username)
        if pair_limit and (pair.aggregate(n=Sum("failures_since_start"))["n"] or 0) >= pair_limit:
            return LoginThrottled(_wait(pair, window, now), scope="pair")
        if address_limit and (at_address.aggregate(n=Sum("failures_since_start"))["n"] or 0) >= address_limit:
            return LoginThrottled(_wait(at_address, window, now), scope="address")
        attempt, created = AccessAttempt.objects.get_or_create(
            username=username,
            ip_address=address,
            user_agent=user_agent[:255],
            defaults={
                "failures_since_start": 1,
                "attempt_time": now,
                "path_info": path[:255],
                "get_data": "",
                "post_data": "",
                "http_accept": "",
            },  # fmt: skip
        )
        if not created:
            AccessAttempt.objects.filter(pk=attempt.pk).update(
                failures_since_start=attempt.failures_since_start + 1, attempt_time=now, path_info=path[:255]
            )
    return None


def clear_pair(*, username: str, address: str | None) -> None:
    AccessAttempt.objects.filter(username=username, ip_address=address).delete()


class LoginThrottleBackend(AxesStandaloneBackend):
    """Checks no password: refuses (``LoginThrottled``) when the pair or the address is out of
    attempts, otherwise counts the attempt and lets the next backend check the password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or not settings.AXES_ENABLED:
            return None  # no client address to count against (e.g. a management command)
        AxesProxyHandler.update_request(request)
        name = normalize_username(request, {settings.AXES_USERNAME_FORM_FIELD: username})
        refusal = check_and_count(
            username=name,
            address=request.axes_ip_address,
            now=request.axes_attempt_time,
            user_agent=request.axes_user_agent,
            path=request.axes_path_info,
        )
        if refusal is not None:
            logger.warning(
                "login refused: throttled",
                extra={
                    "username": name,
                    "address": request.axes_ip_address,
                    "scope": refusal.scope,
                    "wait_s": refusal.wait_s,
                },  # fmt: skip
            )
            raise refusal
        return None

    def get_user(self, user_id):
        # A session stamped with this backend (force_login picks the first backend) still
        # resolves its user, the same way the model backend does.
        from django.contrib.auth.backends import ModelBackend

        return ModelBackend().get_user(user_id)


class ThrottleHandler(AxesDatabaseHandler):
    """axes' database handler, minus its own counting: ``LoginThrottleBackend`` counted the
    attempt before the password check, so a failure adds nothing and a success clears the pair."""

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:
            return
        logger.info(
            "login failed",
            extra={"username": normalize_username(request, credentials), "address": request.axes_ip_address},
        )

    def user_logged_in(self, sender, request, user, **kwargs):
        super().user_logged_in(sender, request, user, **kwargs)  # axes' access log
        clear_pair(username=user.get_username().strip().lower(), address=request.axes_ip_address)
