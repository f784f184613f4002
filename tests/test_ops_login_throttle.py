"""Login throttling on the portal and the admin: after N failures per username (or M per
address) in the window, every attempt is refused with a clear message, even with the right
password, until the window ends."""

from __future__ import annotations

import time

import pytest
import time_machine
from django.core.cache import cache

from tests import factories

PASSWORD = "pw-Test-12345"  # factories.user's password
PORTAL_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
THROTTLED = "Too many failed login attempts"


@pytest.fixture(autouse=True)
def _limits(settings):
    cache.clear()
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_ADDRESS = 10
    settings.LOGIN_FAILURE_WINDOW = 600
    yield
    cache.clear()


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
    assert THROTTLED in response.content.decode()
    assert "Try again in 10 minutes" in response.content.decode()
    assert not logged_in(client)


@pytest.mark.django_db
def test_it_throttles_a_username_whatever_its_case_and_address(client):
    user = factories.UserFactory()
    for i in range(3):
        attempt(client, PORTAL_LOGIN, user.username.upper(), "wrong", address=f"198.51.100.{i}")
    response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="203.0.113.9")
    assert THROTTLED in response.content.decode() and not logged_in(client)


@pytest.mark.django_db
def test_it_throttles_an_address_spraying_many_usernames(client):
    user = factories.UserFactory()
    for i in range(10):
        attempt(client, ADMIN_LOGIN, f"nobody{i}", "wrong", address="192.0.2.77")
    response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD, address="192.0.2.77")
    assert THROTTLED in response.content.decode() and not logged_in(client)
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
        clock.shift(599)
        assert THROTTLED in attempt(client, PORTAL_LOGIN, user.username, PASSWORD).content.decode()
        clock.shift(2)
        # A new window: a failure counts from 1 again, not on top of the old count.
        assert THROTTLED not in attempt(client, PORTAL_LOGIN, user.username, "wrong").content.decode()
        response = attempt(client, PORTAL_LOGIN, user.username, PASSWORD)
    assert response.status_code == 302 and logged_in(client)


@pytest.mark.django_db
def test_it_clears_the_username_counter_on_success(client):
    user = factories.UserFactory()
    for _ in range(2):
        attempt(client, PORTAL_LOGIN, user.username, "wrong")
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):  # two more: four in all, but only two since the success
        attempt(client, PORTAL_LOGIN, user.username, "wrong")
    assert attempt(client, PORTAL_LOGIN, user.username, PASSWORD).status_code == 302


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
    from tests import factories

    user = factories.UserFactory(organization=factories.OrganizationFactory(), role="owner")
    client.force_login(user)
    assert client.get("/").status_code == 200
