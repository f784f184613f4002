"""Accounts: the login page, where each kind of user lands, logout by POST, and password reset
by email through to a working new password."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from licenses.models import Membership
from tests import factories
from tests.factories import MODEL_BACKEND

pytestmark = pytest.mark.django_db
PASSWORD = "pw-Test-12345"


def test_it_serves_a_labelled_login_page(client):
    page = client.get("/accounts/login/").content.decode()
    assert '<label for="id_password">Password</label>' in page
    assert 'autocomplete="current-password"' in page and "csrfmiddlewaretoken" in page
    assert reverse("password_reset") in page


def test_it_sends_a_customer_to_the_portal_and_staff_to_their_dashboard(client):
    org = factories.OrganizationFactory()
    factories.UserFactory(username="cust", organization=org, role=Membership.VIEWER)
    factories.UserFactory(username="boss", is_staff=True)
    response = client.post(reverse("login"), {"username": "cust", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:home")
    assert b"Licenses" in response.content
    client.post(reverse("logout"))
    response = client.post(reverse("login"), {"username": "boss", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:staff_dashboard")


def test_it_refuses_a_wrong_password_without_saying_which_part_was_wrong(client):
    factories.UserFactory(username="cust")
    response = client.post(reverse("login"), {"username": "cust", "password": "nope"})
    assert response.status_code == 200 and b'role="alert"' in response.content
    assert "_auth_user_id" not in client.session


def test_it_logs_out_by_post_only(client):
    user = factories.UserFactory(username="cust", organization=factories.OrganizationFactory())
    client.force_login(user, backend=MODEL_BACKEND)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("portal:home")).status_code == 302


def test_it_resets_a_password_by_email(client):
    factories.UserFactory(username="cust", organization=factories.OrganizationFactory(), email="cust@example.com")
    response = client.post(reverse("password_reset"), {"email": "cust@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Reset your DLS Admin password" and message.to == ["cust@example.com"]
    assert message.alternatives and "Choose a new password" in message.alternatives[0][0]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-New-pass-9876", "new_password2": "a-New-pass-9876"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")
    assert client.login(username="cust", password="a-New-pass-9876")
    # The link works once.
    assert b"This link does not work" in client.get(link, follow=True).content


def test_it_sends_no_email_for_an_unknown_address_but_answers_the_same(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []
