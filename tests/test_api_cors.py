"""The device API in browsers (SPEC section 6, "Browsers"): preflight, CORS headers on every
answer, no cookies, the Origin header wins, chunked bodies, JSON 404/405 under /api/."""

from __future__ import annotations

import io
import json

import pytest

from tests import factories
from tests.factories import MODEL_BACKEND, auth_body, error_of, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]

ORIGIN = "https://app.example.com"


@pytest.mark.parametrize("endpoint", ["authorize", "usage", "release"])
def test_a_preflight_answers_204_with_the_spec_headers(client, endpoint):
    answer = client.options(
        f"/api/v1/{endpoint}",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert answer.status_code == 204
    assert answer["Access-Control-Allow-Origin"] == ORIGIN
    assert answer["Access-Control-Allow-Methods"] == "POST"
    assert answer["Access-Control-Allow-Headers"] == "Content-Type"
    assert answer["Access-Control-Max-Age"] == "86400"
    assert "Origin" in answer["Vary"]
    assert not answer.cookies and "Access-Control-Allow-Credentials" not in answer


def test_every_answer_carries_the_cors_headers_refusals_included(client):
    item = factories.LicenseItemFactory()
    ok = post(client, "authorize", auth_body(item.project), HTTP_ORIGIN=ORIGIN)
    refused = post(client, "authorize", auth_body(item.project, license_key="nope"), HTTP_ORIGIN=ORIGIN)
    shape = post(client, "authorize", b"{", HTTP_ORIGIN=ORIGIN)
    for answer in (ok, refused, shape):
        assert answer["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in answer["Vary"]
        assert answer["Access-Control-Expose-Headers"] == "Retry-After"
    assert [ok.status_code, refused.status_code, shape.status_code] == [200, 403, 400]
    no_origin = post(client, "authorize", auth_body(item.project))
    assert no_origin["Access-Control-Allow-Origin"] == "*"


def test_no_cookies_are_read_or_set(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff, backend=MODEL_BACKEND)
    item = factories.LicenseItemFactory()
    answer = post(client, "authorize", auth_body(item.project), HTTP_ORIGIN=ORIGIN)
    assert answer.status_code == 200 and not answer.cookies and "Set-Cookie" not in answer
    refused = post(client, "release", {"license_key": "x", "device_uuid": "d"}, HTTP_ORIGIN=ORIGIN)
    assert not refused.cookies


def test_the_origin_header_wins_over_the_body(client):
    item = factories.LicenseItemFactory(per_domain=True, domain="example.com")
    body = auth_body(item.project, "w1", client_type="web", edition="javascript", origin="https://app.example.com")
    forged = post(client, "authorize", body, HTTP_ORIGIN="https://evil.test")
    assert forged.status_code == 403 and error_of(forged)["code"] == 103
    assert "Origin header" in error_of(forged)["message"]
    same = post(client, "authorize", body, HTTP_ORIGIN="HTTPS://APP.EXAMPLE.COM:443")  # the same after normalization
    assert same.status_code == 200
    opaque = post(client, "authorize", body, HTTP_ORIGIN="null")
    assert error_of(opaque)["code"] == 103


def test_a_desktop_client_is_not_held_to_an_origin_header(client):
    item = factories.LicenseItemFactory()
    assert post(client, "authorize", auth_body(item.project), HTTP_ORIGIN="https://x.test").status_code == 200


def chunked(client, body: bytes):
    return client.generic(
        "POST",
        "/api/v1/authorize",
        CONTENT_TYPE="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )


def test_a_chunked_body_is_read(client):
    item = factories.LicenseItemFactory()
    answer = chunked(client, json.dumps(auth_body(item.project)).encode())
    assert answer.status_code == 200, answer.content


def test_a_chunked_body_past_one_mib_is_413(client):
    answer = chunked(client, b"{" + b" " * (1024 * 1024) + b"}")
    assert answer.status_code == 413 and error_of(answer)["code"] == 1
    assert answer["Access-Control-Allow-Origin"] == "*"


def test_unknown_paths_and_methods_under_api_answer_the_spec_body(client):
    missing = client.post("/api/v1/nope", data="{}", content_type="application/json", HTTP_ORIGIN=ORIGIN)
    assert missing.status_code == 404 and error_of(missing) == {
        "code": 7,
        "name": "NOT_FOUND",
        "message": "no such endpoint: /api/v1/nope",
    }
    assert missing["Access-Control-Allow-Origin"] == ORIGIN
    elsewhere = client.get("/api/v2/anything")
    assert elsewhere.status_code == 404 and error_of(elsewhere)["code"] == 7
    wrong = client.get("/api/v1/authorize")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == 1 and error_of(wrong)["name"] == "INVALID_REQUEST"
    options = client.options("/api/v1/authorize")  # OPTIONS that is not a preflight
    assert options.status_code == 405 and error_of(options)["code"] == 1
