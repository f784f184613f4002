"""The password-reset form: the same answer, the same work in the request and the same template
for a known and an unknown address (the email is sent by a background thread); rate limited per
client address and per email, the same for known and unknown addresses."""

from __future__ import annotations

import re
from concurrent.futures import wait

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dls_admin import password_reset
from tests import factories

RESET = "/accounts/password-reset/"


def post(client, email, address="192.0.2.40"):
    return client.post(RESET, {"email": email}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_it_is_the_reset_form_named_password_reset(client):
    assert reverse("password_reset") == RESET
    page = client.get(RESET)
    assert page.status_code == 200 and b"Reset your password" in page.content


@pytest.mark.django_db(transaction=True)
def test_known_and_unknown_addresses_get_the_same_answer_and_the_same_work(client, settings, monkeypatch):
    settings.PASSWORD_RESET_IN_BACKGROUND = True
    factories.UserFactory(username="known", email="known@example.com")
    submitted = []
    real_submit = password_reset.executor.submit
    monkeypatch.setattr(
        password_reset.executor, "submit", lambda *a, **kw: submitted.append(real_submit(*a, **kw)) or submitted[-1]
    )

    def answer(email):
        with CaptureQueriesContext(connection) as queries:
            response = post(client, email)
        return response, [q["sql"] for q in queries.captured_queries]

    known, known_sql = answer("known@example.com")
    unknown, unknown_sql = answer("nobody@example.com")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known["Location"] == reverse("password_reset_done") and known.content == unknown.content
    # No lookup of the address inside the request: the same queries (none of auth_user) for both.
    assert known_sql == unknown_sql and not any("auth_user" in sql for sql in known_sql)
    assert len(submitted) == 2  # both handed to the background thread, which does the lookup
    wait(submitted, timeout=30)
    assert [m.to for m in mail.outbox] == [["known@example.com"]]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    assert client.get(link, follow=True).status_code == 200


FRESH_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "reset-tests"}}


@pytest.mark.django_db
def test_it_limits_requests_per_email_alike_for_known_and_unknown(client, settings):
    settings.CACHES = FRESH_CACHE  # an hour's counters must not outlive the test (CI reruns on one Redis)
    settings.PASSWORD_RESET_RATE_LIMIT_EMAIL = "2/h"
    factories.UserFactory(username="known2", email="known2@example.com")
    for email in ("known2@example.com", "nobody2@example.com"):
        statuses = [post(client, email, address=f"198.51.100.{i}").status_code for i in range(3)]
        assert statuses == [302, 302, 429], (email, statuses)
    assert len(mail.outbox) == 2  # the two allowed requests for the known address
    response = post(client, "KNOWN2@example.com", address="198.51.100.9")  # case does not matter
    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many reset requests" in text and "Try again in" in text and "Reset your password" in text


@pytest.mark.django_db
def test_it_limits_requests_per_address(client, settings):
    settings.CACHES = FRESH_CACHE
    settings.PASSWORD_RESET_RATE_LIMIT_ADDRESS = "3/h"
    statuses = [post(client, f"spray{i}@example.com", address="203.0.113.40").status_code for i in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    assert post(client, "spray9@example.com", address="203.0.113.41").status_code == 302


@pytest.fixture
def broken_cache_state():
    from api import ratelimit

    ratelimit.reset_degradation()
    yield ratelimit
    ratelimit.reset_degradation()  # the pause and the per-process counts stay with this test


@pytest.mark.django_db
def test_it_keeps_answering_when_the_cache_is_unreachable(client, settings, broken_cache_state):
    from tests.test_ops_healthz import _closed_port

    settings.PASSWORD_RESET_RATE_LIMIT_EMAIL = "2/h"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }
    factories.UserFactory(username="known3", email="known3@example.com")
    assert post(client, "known3@example.com").status_code == 302
    assert len(mail.outbox) == 1
    assert broken_cache_state.degradation["errors"] == 1  # counted (and logged), then left alone
    assert post(client, "known3@example.com").status_code == 302
    assert post(client, "known3@example.com").status_code == 429  # the limit holds, per process
