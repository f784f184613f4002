"""Every row of the SPEC section 6 error table, reached by a request, and the order of the checks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from devices.models import Decision
from tests import factories
from tests.factories import NOW, SLOT, auth_body, authorize, minutes, post, release, report, usage_body
from usage.models import UsageReport

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def assert_refusal(response, status: int, code: int, name: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code and error["name"] == name
    assert isinstance(error["message"], str) and error["message"]
    return error


# --- 1 INVALID_REQUEST -------------------------------------------------------------------------


def test_it_refuses_malformed_json(client):
    error = assert_refusal(post(client, "authorize", b'{"license_key": '), 400, 1, "INVALID_REQUEST")
    assert "body" in error["fields"]


def test_it_names_missing_and_ill_formed_fields(client):
    item = factories.LicenseItemFactory()
    body = auth_body(item.project, device_uuid="bad uuid!", client_type="toaster")
    del body["product"]
    error = assert_refusal(post(client, "authorize", body), 400, 1, "INVALID_REQUEST")
    assert set(error["fields"]) == {"device_uuid", "client_type", "product"}
    assert error["fields"]["product"] == "is required"


def test_it_requires_an_origin_for_web_clients(client):
    item = factories.LicenseItemFactory()
    error = assert_refusal(authorize(client, item.project, client_type="web"), 400, 1, "INVALID_REQUEST")
    assert error["fields"] == {"origin": "is required for client_type web"}
    error = assert_refusal(
        authorize(client, item.project, client_type="web", origin="https://x.com/path"), 400, 1, "INVALID_REQUEST"
    )
    assert "origin" in error["fields"]


@pytest.mark.parametrize(
    "fields, bad",
    [
        ({"barcode_scans": "3"}, "barcode_scans"),
        ({"barcode_scans": 3.0}, "barcode_scans"),
        ({"barcode_scans": True}, "barcode_scans"),
        ({"barcode_scans": -1}, "barcode_scans"),
        ({"barcode_scans": 1_000_001}, "barcode_scans"),
        ({"barcode_scans": 10**40}, "barcode_scans"),
        ({"pages": {"core": 1_000_001}}, "pages.core"),
        ({"pages": {"fax": 1}}, "pages.fax"),
        ({"pages": [1]}, "pages"),
        ({"sightings": [{"ts_ms": 1, "frame": 1, "format": "QR_CODE"}]}, "sightings.0.text"),
        ({"sightings": [{"ts_ms": 1, "frame": 1, "format": "QR", "text": "x"}] * 10_001}, "sightings"),
        ({"report_id": ""}, "report_id"),
        ({"report_id": "x" * 65}, "report_id"),
        ({"report_id": "tab\there"}, "report_id"),
        ({"slot_start": "yesterday"}, "slot_start"),
        ({"slot_start": "2026-11-27T17:24:00"}, "slot_start"),
        ({"slot_start": 1795800240}, "slot_start"),
    ],
)
def test_it_refuses_ill_formed_usage_fields(client, fields, bad):
    item = factories.LicenseItemFactory()
    assert authorize(client, item.project).status_code == 200
    error = assert_refusal(post(client, "usage", usage_body(item.project, **fields)), 400, 1, "INVALID_REQUEST")
    assert bad in error["fields"], error


@pytest.mark.parametrize(
    "slot, reason",
    [
        (SLOT + timedelta(seconds=60), "3-minute boundary"),
        (SLOT + timedelta(microseconds=1), "3-minute boundary"),
        (NOW + minutes(6), "5 minutes in the future"),
        (SLOT - timedelta(days=30, minutes=3), "30 days old"),
    ],
)
def test_it_refuses_a_slot_off_the_grid_too_far_ahead_or_too_old(client, slot, reason):
    item = factories.LicenseItemFactory()
    authorize(client, item.project)
    response = post(client, "usage", {**usage_body(item.project), "slot_start": slot.isoformat()})
    error = assert_refusal(response, 400, 1, "INVALID_REQUEST")
    assert reason in error["fields"]["slot_start"]


def test_it_accepts_the_slot_bounds_themselves(client):
    item = factories.LicenseItemFactory()
    authorize(client, item.project)
    future = NOW + minutes(3)  # <= 5 minutes ahead, on the grid
    oldest = SLOT - timedelta(days=30)  # exactly 30 days old
    assert report(client, item.project, report_id="a", slot=future).status_code == 200
    assert report(client, item.project, report_id="b", slot=oldest).status_code == 200


def test_it_answers_413_for_a_body_over_one_mebibyte(client):
    item = factories.LicenseItemFactory()
    body = auth_body(item.project)
    body["device_name"] = "x" * (1024 * 1024)
    assert_refusal(post(client, "authorize", body), 413, 1, "INVALID_REQUEST")


def test_it_takes_a_body_of_exactly_one_mebibyte(client):
    item = factories.LicenseItemFactory()
    key = item.project.license_key
    text = f'{{"license_key": "{key}", "device_uuid": "d", "product": "dbr", "client_type": "desktop"}}'
    body = text + " " * (1024 * 1024 - len(text))
    assert post(client, "authorize", body.encode()).status_code == 200


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"[]", "application/json"),
        (b'"text"', "application/json"),
        (b"null", "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b'{"license_key": "\\ud800"}', "application/json"),
        (b'{"barcode_scans": NaN}', "application/json"),
        (b"[" * 100_000, "application/json"),
        (b"1" * 5000, "application/json"),
        (b'{"license_key": "k"}', "text/plain"),
        (b'{"license_key": "k"}', "application/x-www-form-urlencoded"),
        (b'{"license_key": "k"}', "application/json; charset=latin-1"),
    ],
)
@pytest.mark.parametrize("path", ["authorize", "usage", "release"])
def test_it_answers_400_with_the_spec_body_to_any_shape(client, path, body, content_type):
    response = post(client, path, body, content_type=content_type)
    error = assert_refusal(response, 400, 1, "INVALID_REQUEST")
    assert error["fields"]


@pytest.mark.parametrize("escape", ["\\uDFFF", "\\ud800x", "ok\\udbff"])
def test_a_lone_surrogate_anywhere_in_a_wellformed_report_is_refused(client, escape):
    """The body is valid JSON and valid UTF-8, and the report otherwise valid: only the escape
    (upper or lower case, in a nested string or a key) makes it no Unicode text."""
    item = factories.LicenseItemFactory(per_barcode_scan=True)
    assert authorize(client, item.project).status_code == 200
    ok = usage_body(
        item.project, barcode_scans=1, sightings=[{"ts_ms": 1, "frame": 0, "format": "QR_CODE", "text": "caf\u00e9"}]
    )
    text = json.dumps(ok)
    assert "\\u00e9" in text and post(client, "usage", text).status_code == 200  # an escape, valid text
    for bad in (text.replace("\\u00e9", escape), text.replace('"ts_ms"', f'"{escape}", "ts_ms"', 1).replace(
            f'"{escape}", "ts_ms"', f'"{escape}": 1, "ts_ms"')):  # fmt: skip
        error = assert_refusal(post(client, "usage", bad.replace('"r-1"', '"r-2"')), 400, 1, "INVALID_REQUEST")
        assert "not valid Unicode" in error["fields"]["body"]
    assert UsageReport.objects.filter(device__project=item.project).count() == 1


# --- the rest of the table ---------------------------------------------------------------------


def test_it_refuses_an_unknown_key_with_101(client):
    factories.LicenseItemFactory()
    assert_refusal(post(client, "authorize", {**auth_body(factories.ProjectFactory()), "license_key": "nope"}), 403, 101,
                   "LICENSE_KEY_INVALID")  # fmt: skip
    body = usage_body(factories.ProjectFactory())
    assert_refusal(post(client, "usage", {**body, "license_key": "nope"}), 403, 101, "LICENSE_KEY_INVALID")
    assert_refusal(post(client, "release", {"license_key": "nope", "device_uuid": "d"}), 403, 101,
                   "LICENSE_KEY_INVALID")  # fmt: skip


def test_it_refuses_an_origin_outside_the_domain_with_103(client):
    item = factories.LicenseItemFactory(per_domain=True, product="dwt", domain="*.example.com")
    response = authorize(client, item.project, product="dwt", client_type="web", origin="https://evil.com")
    assert_refusal(response, 403, 103, "DOMAIN_MISMATCH")


def test_it_refuses_when_no_item_serves_with_104(client):
    item = factories.LicenseItemFactory(product="dbr")
    assert_refusal(authorize(client, item.project, product="dlr"), 403, 104, "NO_MATCHING_LICENSE")


def test_it_refuses_an_expired_license_with_111(client):
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=400), expires_at=NOW)
    item = factories.LicenseItemFactory(license=lic)
    assert_refusal(authorize(client, item.project), 403, 111, "LICENSE_EXPIRED")


def test_it_refuses_a_license_not_yet_effective_with_112(client):
    lic = factories.LicenseFactory(starts_at=NOW + timedelta(seconds=1))
    item = factories.LicenseItemFactory(license=lic)
    assert_refusal(authorize(client, item.project), 403, 112, "LICENSE_NOT_YET_EFFECTIVE")


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_it_refuses_a_suspended_or_revoked_license_with_113(client, status):
    item = factories.LicenseItemFactory(license=factories.LicenseFactory(status=status))
    assert_refusal(authorize(client, item.project), 403, 113, "LICENSE_REVOKED")


def test_it_refuses_usage_and_release_from_a_never_authorized_device_with_code_4(client):
    item = factories.LicenseItemFactory()
    assert_refusal(report(client, item.project, "stranger"), 403, 4, "DEVICE_NOT_AUTHORIZED")
    assert_refusal(release(client, item.project, "stranger"), 403, 4, "DEVICE_NOT_AUTHORIZED")


def test_it_refuses_a_full_item_with_120(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0)
    assert authorize(client, item.project, "a").status_code == 200
    error = assert_refusal(authorize(client, item.project, "b"), 403, 120, "USAGE_EXCEEDED")
    assert error["message"] == "1 of 1 seats are taken (grace 0)"


def test_it_refuses_a_reused_report_id_with_another_body_with_409(client):
    item = factories.LicenseItemFactory()
    authorize(client, item.project)
    assert report(client, item.project, barcode_scans=1).status_code == 200
    assert_refusal(report(client, item.project, barcode_scans=2), 409, 2, "IDEMPOTENCY_CONFLICT")


def test_it_rate_limits_per_device_with_code_3_and_retry_after(client, settings):
    settings.API_RATE_LIMIT = "2/m"
    item = factories.LicenseItemFactory()
    assert authorize(client, item.project, "rl-1").status_code == 200
    assert authorize(client, item.project, "rl-1").status_code == 200
    response = authorize(client, item.project, "rl-1")
    assert_refusal(response, 429, 3, "RATE_LIMITED")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert authorize(client, item.project, "rl-2").status_code == 200  # another device is not limited


def test_it_rate_limits_per_client_address(client, settings):
    settings.API_RATE_LIMIT_ADDRESS = "1/m"
    item = factories.LicenseItemFactory()
    assert post(client, "authorize", auth_body(item.project, "a"), REMOTE_ADDR="10.9.8.7").status_code == 200
    response = post(client, "authorize", auth_body(item.project, "b"), REMOTE_ADDR="10.9.8.7")
    assert_refusal(response, 429, 3, "RATE_LIMITED")
    assert post(client, "authorize", auth_body(item.project, "b"), REMOTE_ADDR="10.9.8.8").status_code == 200


# --- order of the checks -----------------------------------------------------------------------


def test_it_checks_the_shape_before_the_key(client):
    body = {"license_key": "nope", "device_uuid": "d", "product": "nothing", "client_type": "desktop"}
    assert_refusal(post(client, "authorize", body), 400, 1, "INVALID_REQUEST")


def test_it_checks_the_slot_before_the_key(client):
    body = {**usage_body(factories.ProjectFactory()), "license_key": "nope", "slot_start": "2026-11-27T17:25:00Z"}
    assert_refusal(post(client, "usage", body), 400, 1, "INVALID_REQUEST")


def test_it_checks_the_shape_before_the_rate_limit(client, settings):
    settings.API_RATE_LIMIT_ADDRESS = "1/m"
    item = factories.LicenseItemFactory()
    for _ in range(3):
        assert post(client, "authorize", {"license_key": 1}, REMOTE_ADDR="10.1.1.1").status_code == 400
    assert post(client, "authorize", auth_body(item.project), REMOTE_ADDR="10.1.1.1").status_code == 200


def test_it_checks_the_device_before_idempotency_and_idempotency_before_the_rules(client):
    item = factories.LicenseItemFactory(license=factories.LicenseFactory(status="active"))
    authorize(client, item.project)
    assert report(client, item.project, barcode_scans=1).status_code == 200
    # Another device with the same report_id: its own namespace, so it is code 4, not 409.
    assert_refusal(report(client, item.project, "other", barcode_scans=2), 403, 4, "DEVICE_NOT_AUTHORIZED")
    # The license gets suspended: a conflicting retry is still 409 (before the rules).
    item.license.status = "suspended"
    item.license.save()
    assert_refusal(report(client, item.project, barcode_scans=2), 409, 2, "IDEMPOTENCY_CONFLICT")


def test_it_records_refusals_as_decisions(client):
    item = factories.LicenseItemFactory(quantity=1, device_grace_percent=0)
    authorize(client, item.project, "a")
    authorize(client, item.project, "b")
    decision = Decision.objects.get(device_uuid="b")
    assert (decision.allowed, decision.code, decision.rule, decision.item_id) == (
        False,
        120,
        "seats_exhausted",
        item.pk,
    )
    assert decision.counts == {"active": 1, "quantity": 1, "ceiling": 1}
    assert decision.endpoint == "authorize" and decision.created_at == NOW
