"""The device endpoints skip the pages' middleware (dls_admin/pages_only.py): no session,
user, messages or the pages' CSP for them, a fixed policy on their answers instead; every
other request goes through that middleware as before."""

from __future__ import annotations

import json

import pytest
from django.db import connection, connections

from api.cors import DEVICE_API_CSP
from tests import factories
from tests.factories import auth_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def test_a_device_answer_carries_the_fixed_policy_and_no_session_or_user(client):
    seen = {}

    def spy(execute, sql, params, many, context):
        seen.setdefault("sql", []).append(sql)
        return execute(sql, params, many, context)

    item = factories.LicenseItemFactory(quantity=5)
    with connection.execute_wrapper(spy):
        answer = client.post(
            "/api/v1/authorize", json.dumps(auth_body(item.project, "d1")), content_type="application/json"
        )
    assert answer.status_code == 200, answer.json()
    assert answer["Content-Security-Policy"] == DEVICE_API_CSP
    assert answer["X-Content-Type-Options"] == "nosniff" and answer["X-Frame-Options"] == "DENY"
    assert not hasattr(answer.wsgi_request, "session") and not hasattr(answer.wsgi_request, "user")
    assert not hasattr(answer.wsgi_request, "_messages")
    assert not any("django_session" in s or "auth_user" in s for s in seen["sql"])


def test_a_refusal_carries_it_too(client):
    answer = client.post("/api/v1/usage", "{}", content_type="application/json")
    assert answer.status_code == 400
    assert answer["Content-Security-Policy"] == DEVICE_API_CSP


@pytest.mark.parametrize("url", ["/api/v1/docs", "/accounts/login/"])
def test_pages_keep_the_pages_policy_session_and_user(client, url):
    answer = client.get(url)
    assert answer.status_code == 200
    assert "script-src 'self'" in answer["Content-Security-Policy"]
    assert hasattr(answer.wsgi_request, "session") and hasattr(answer.wsgi_request, "user")


def test_the_login_form_still_checks_csrf(db):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    answer = strict.post("/accounts/login/", {"username": "x", "password": "y"})
    assert answer.status_code == 403


@pytest.mark.parametrize("url, checks", [("/api/v1/usage", 0), ("/healthz", 1)])
def test_no_health_check_round_trip_for_a_device_request(client, monkeypatch, url, checks):
    # What request_started does with CONN_HEALTH_CHECKS on (the test client skips it).
    item = factories.LicenseItemFactory(quantity=5)
    client.post("/api/v1/authorize", json.dumps(auth_body(item.project, "d1")), content_type="application/json")
    calls = []
    wrapper = connections["default"]  # the thread's own, not the proxy
    real = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda: calls.append(1) or real())
    monkeypatch.setattr(wrapper, "health_check_enabled", True)
    monkeypatch.setattr(wrapper, "health_check_done", False)
    body = {"license_key": item.project.license_key, "device_uuid": "d1", "report_id": "r1",
            "slot_start": "2026-11-27T17:24:00Z", "barcode_scans": 1}  # fmt: skip
    if url == "/healthz":
        client.get(url)
    else:
        assert client.post(url, json.dumps(body), content_type="application/json").status_code == 200
    assert len(calls) == checks
