"""Structured logs: one JSON object per line with time, level, logger, message and the request
id; gunicorn's access lines become fields; the request id comes from X-Request-ID or is made."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from dls_admin.logging import JsonFormatter, RequestIdFilter, RequestIdMiddleware, logging_config


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.ops")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_it_writes_one_json_object_per_record(captured):
    logger, stream = captured
    logger.info("seat %s of %s\nsecond line", 3, 30, extra={"device_uuid": "d-1"})
    [record] = lines(stream)
    assert record["level"] == "INFO" and record["logger"] == "tests.ops"
    assert record["message"] == "seat 3 of 30\nsecond line"
    assert record["device_uuid"] == "d-1"
    assert record["time"].endswith("Z") and "T" in record["time"]
    assert "request_id" not in record  # outside a request


def test_it_includes_the_exception(captured):
    logger, stream = captured
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    [record] = lines(stream)
    assert record["level"] == "ERROR" and "RuntimeError: boom" in record["exc_info"]


def test_it_tags_records_with_the_request_id(captured):
    logger, stream = captured

    def view(request):
        logger.warning("inside")
        return HttpResponse("ok")

    middleware = RequestIdMiddleware(view)
    given = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="lb-1234abcd"))
    made = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="bad id with spaces"))
    first, second = lines(stream)
    assert given["X-Request-ID"] == "lb-1234abcd" == first["request_id"]
    assert made["X-Request-ID"] != "bad id with spaces"
    assert len(made["X-Request-ID"]) == 32 and second["request_id"] == made["X-Request-ID"]


def test_it_turns_gunicorn_access_atoms_into_fields():
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s %(r)s", None, None)
    record.args = {"h": "192.0.2.1", "m": "POST", "U": "/api/v1/usage", "q": "", "s": "200", "B": "312", "M": "7",
                   "a": "sdk/10.4", "{x-request-id}o": "abc123456789"}  # fmt: skip
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "POST /api/v1/usage 200"
    assert data["status"] == 200 and data["duration_ms"] == 7 and data["bytes"] == 312
    assert data["remote_addr"] == "192.0.2.1" and data["request_id"] == "abc123456789"
    assert "query" not in data


def test_it_uses_json_in_production_and_text_otherwise():
    json_config = logging_config(json_format=True)
    text_config = logging_config(json_format=False)
    assert json_config["handlers"]["console"]["formatter"] == "json"
    assert text_config["handlers"]["console"]["formatter"] == "text"
    assert json_config["handlers"]["console"]["stream"] == "ext://sys.stdout"


def test_it_logs_json_lines_from_a_production_process():
    from tests.test_ops_deploy_check import manage, production_env

    code = "import logging; logging.getLogger('dls.check').warning('hello %s', 'world')"
    result = manage("shell", "--no-imports", "-c", code, env=production_env())
    assert result.returncode == 0, result.stderr
    [record] = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert record["message"] == "hello world" and record["logger"] == "dls.check" and record["level"] == "WARNING"


def test_it_keeps_the_field_order_and_encodes_any_extra(captured):
    from datetime import UTC, datetime

    logger, stream = captured
    logger.info("x", extra={"at": datetime(2026, 11, 27, 17, 24, tzinfo=UTC), "obj": object(), "ünï": "çødé"})
    line = stream.getvalue().splitlines()[0]
    record = json.loads(line)
    assert list(record)[:4] == ["time", "level", "logger", "message"]
    assert record["at"] == "2026-11-27T17:24:00+00:00" and record["obj"].startswith("<object object")
    assert "çødé" in line  # not \u-escaped
