"""/healthz checks the database (503 when it fails) and Redis when configured (200 "degraded" when
it fails: the API and logins keep serving); /healthz/ping touches nothing."""

from __future__ import annotations

import socket

import pytest
from django.db import OperationalError, connections

REDIS_URL = "redis://127.0.0.1:6379/5"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.django_db
def test_it_is_ok_without_redis_configured(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not configured"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_it_checks_redis_when_configured(client, settings):
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_it_reports_redis_unreachable_as_degraded_without_failing_the_probe(client, settings):
    # The device API and logins keep serving without Redis, so the process stays in rotation.
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/5"
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "ok" and body["degraded"] == ["redis"]
    assert body["redis"].startswith("error") and "failed" not in body


@pytest.mark.django_db
def test_it_answers_503_when_the_database_fails(client, settings, monkeypatch):
    settings.REDIS_URL = ""

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["failed"] == ["database"]
    assert body["database"] == "error: OperationalError"


def test_it_answers_ping_without_the_database(client):
    # No django_db mark: any database access would raise here.
    response = client.get("/healthz/ping")
    assert response.status_code == 200
    assert response.json() == {"pong": True}


@pytest.mark.django_db
def test_it_refuses_writes(client):
    assert client.post("/healthz").status_code == 405
