"""Login throttling on the portal and the admin (django-axes, counted before the password check):
after N attempts per (username, address) pair, or M per address, in the window, every attempt
from there is refused with a message saying what to do, even with the right password, until the
window ends; the owner logs in from elsewhere; 60 simultaneous attempts get at most N password
checks; the counts live in the database, so logins work while Redis is down."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.test import Client

from tests import factories

PASSWORD = "pw-Test-12345"  # factories.UserFactory's password
PORTAL_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
THROTTLED = "Too many failed login attempts"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_ADDRESS = 10
    settings.LOGIN_FAILURE_WINDOW = 600


def attempt(client, url, username, password, address="192.0.2.10"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
@pytest.mark.parametrize("url, staff", [(PORTAL_LOGIN, False), (ADMIN_LOGIN, True)])
def test_it_refuses_the_right_password_after_too_many_failures(client, url, staff):
    user = factories.UserFactory(is_staff=staff)
    for _ in range(3):
        response = attempt(client, url, user.username, "wrong")
        assert response.status_code == 200 and THROTTLED not in response.content.decode()
    response = attempt(client, url, user.username, PASSWORD)
    assert response.status_code == 200
    text = response.content.decode()
    assert f"{THROTTLED} for this account from your address" in text
    assert "Try again in 10 minutes" in text and "Forgot your password?" in text  # what to do
    assert not logged_in(client)


@pytest.mark.django_db
def test_it_locks_the_username_and_address_pair_not_the_user(client):
    user = factories.UserFactory()
    for _ in range(3):  # whatever the case of the username
        attempt(client, PORTAL_LOGIN, user.username.upper(), "wrong", address="198.51.100.1")
    response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="198.51.100.1")
    assert THROTTLED in response.content.decode() and not logged_in(client)
    # The owner, from anywhere else, is not locked out by someone else's guesses.
    response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="203.0.113.9")
    assert response.status_code == 302 and logged_in(client)


@pytest.mark.django_db
def test_it_throttles_an_address_spraying_many_usernames(client):
    user = factories.UserFactory()
    for i in range(10):
        attempt(client, ADMIN_LOGIN, f"nobody{i}", "wrong", address="192.0.2.77")
    response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="192.0.2.77")
    assert f"{THROTTLED} from your address" in response.content.decode() and not logged_in(client)
    # The same account from another address still logs in: only the address is throttled.
    response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="192.0.2.78")
    assert response.status_code == 302 and logged_in(client)


@pytest.mark.django_db
def test_it_lets_the_user_in_again_after_the_window(client):
    user = factories.UserFactory()
    with time_machine.travel(time.time(), tick=False) as clock:
        for _ in range(3):
            attempt(client, PORTAL_LOGIN, user.username, "wrong")
        assert THROTTLED in attempt(client, PORTAL_LOGIN, user.username, PASSWORD).content.decode()
        clock.shift(599)  # refused attempts do not move the window
        assert THROTTLED in attempt(client, PORTAL_LOGIN, user.username, PASSWORD).content.decode()
        clock.shift(2)
        # A new window: a failure counts from 1 again, not on top of the old count.
        assert THROTTLED not in attempt(client, PORTAL_LOGIN, user.username, "wrong").content.decode()
        response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD)
    assert response.status_code == 302 and logged_in(client)


@pytest.mark.django_db
def test_it_clears_the_pair_on_success(client):
    user = factories.UserFactory()
    for _ in range(2):
        attempt(client, PORTAL_LOGIN, user.username, "wrong")
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):  # two more: four in all, but only two since the success
        attempt(client, PORTAL_LOGIN, user.username, "wrong")
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_it_keeps_the_attempts_in_the_database(client):
    user = factories.UserFactory()
    attempt(client, PORTAL_LOGIN, user.username.title(), "wrong", address="192.0.2.5")
    attempt(client, ADMIN_LOGIN, user.username, "wrong", address="192.0.2.5")
    [row] = AccessAttempt.objects.all()  # axes' model: one row per pair (and user agent), in its admin
    assert (row.username, row.ip_address, row.failures_since_start) == (user.username, "192.0.2.5", 2)


@pytest.mark.django_db
def test_it_can_be_turned_off(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 0
    settings.LOGIN_FAILURE_LIMIT_ADDRESS = 0
    user = factories.UserFactory()
    for _ in range(20):
        attempt(client, PORTAL_LOGIN, user.username, "wrong")
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_it_keeps_force_login_working_with_the_throttle_backend_first(client):
    # force_login stamps the session with the first backend; its get_user must find the user.
    user = factories.UserFactory(organization=factories.OrganizationFactory(), role="owner")
    client.force_login(user)
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_it_logs_in_with_the_cache_unreachable(client, settings):
    from tests.test_ops_healthz import _closed_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }
    user = factories.UserFactory()
    for _ in range(3):
        assert attempt(client, PORTAL_LOGIN, user.username, "wrong").status_code == 200
    assert THROTTLED in attempt(client, PORTAL_LOGIN, user.username, PASSWORD).content.decode()
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="192.0.2.99").status_code == 302


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_it_checks_at_most_the_limit_of_passwords_when_60_attempts_race(settings, monkeypatch):
    """60 threads, one username, one address, released together: exactly 5 password checks (the
    limit), 55 refusals. On PostgreSQL (the advisory lock) and SQLite (BEGIN IMMEDIATE) alike."""
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_LIMIT_ADDRESS = 30
    user = factories.UserFactory()
    checks = []
    real_authenticate = ModelBackend.authenticate

    def counting_authenticate(self, request, username=None, password=None, **kwargs):
        checks.append(password)  # list.append is atomic
        return real_authenticate(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting_authenticate)
    threads = 60
    barrier = threading.Barrier(threads)

    def one(i):
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = attempt(client, PORTAL_LOGIN, user.username, f"wrong-{i}", address="198.51.100.60")
            return response.status_code, THROTTLED in response.content.decode()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, range(threads)))
    assert {status for status, _ in results} == {200}
    race_checks = len(checks)
    assert race_checks == 5, race_checks
    assert sum(throttled for _, throttled in results) == threads - 5
    # The right password is refused from there after the race, and gets in from elsewhere.
    client = Client()
    assert THROTTLED in attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="198.51.100.60").content.decode()
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="198.51.100.61").status_code == 302
    print(f"\nlogin race ({connection.vendor}): {threads} attempts, {race_checks} password checks, limit 5")
