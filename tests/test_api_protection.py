"""Project protection (SPEC section 6): the session password on every device request, the
validation fields on authorize, and the order of the checks."""

from __future__ import annotations

import pytest

from devices.models import Decision
from devices.protection import ProtectionError, password_digest, set_protection
from licenses.models import AuditLog
from tests import factories
from tests.factories import NOW, authorize, error_of, post, report, usage_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def project_with(*options, **protection):
    project = factories.ProjectFactory()
    for option in options or ("per_client_device",):
        factories.LicenseItemFactory(project=project, option=option)
    set_protection(project, actor="cli:test", now=NOW, **protection)
    project.refresh_from_db()
    return project


def code(response) -> int:
    return error_of(response)["code"]


# --- session password ------------------------------------------------------------------------


def test_the_password_is_stored_as_a_keyed_digest_not_the_password():
    project = project_with(session_password="s3cret-pass")
    assert project.session_password_digest == password_digest("s3cret-pass")
    assert "s3cret" not in project.session_password_digest and len(project.session_password_digest) == 64
    audit = AuditLog.objects.get(action="project.protection")
    assert audit.after["session_password"] is True and "s3cret" not in str(audit.after) + str(audit.before)


@pytest.mark.parametrize(("given", "expected"), [("s3cret", 200), ("wrong", 102), (None, 102), ("", 102)])
def test_authorize_usage_and_release_check_the_password(client, given, expected):
    project = project_with(session_password="s3cret")
    assert authorize(client, project, "d1", session_password="s3cret").status_code == 200
    answers = [
        authorize(client, project, "d1", session_password=given),
        post(client, "usage", usage_body(project, "d1", session_password=given)),
        post(client, "release", {"license_key": project.license_key, "device_uuid": "d1", "session_password": given}),
    ]
    for answer in answers:
        if expected == 200:
            assert answer.status_code == 200, answer.json()
        else:
            assert answer.status_code == 403 and code(answer) == 102
            assert error_of(answer)["name"] == "SESSION_PASSWORD_INVALID"
    if expected == 102:
        rules = set(Decision.objects.filter(code=102).values_list("rule", flat=True))
        assert rules <= {"session_password_missing", "session_password_wrong"} and rules


def test_a_project_without_a_password_ignores_one_sent(client):
    project = project_with()
    assert authorize(client, project, "d1", session_password="anything").status_code == 200


def test_clearing_the_password_lets_requests_without_it_through(client):
    project = project_with(session_password="s3cret")
    set_protection(project, actor="cli:test", now=NOW, clear_session_password=True)
    assert authorize(client, project, "d1").status_code == 200


def test_a_usage_retry_with_another_password_is_the_same_report(client):
    project = project_with(session_password="s3cret")
    authorize(client, project, "d1", session_password="s3cret")
    first = report(client, project, "d1", session_password="s3cret", barcode_scans=0)
    assert first.json()["status"] == "accepted"
    set_protection(project, actor="cli:test", now=NOW, session_password="n3w")
    again = report(client, project, "d1", session_password="n3w", barcode_scans=0)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


# --- the order of the checks -----------------------------------------------------------------


def test_order_shape_before_key_before_password(client):
    project = project_with(session_password="s3cret")
    bad_shape = factories.auth_body(project, "d1", license_key="nope", client_type="tv")
    assert post(client, "authorize", bad_shape).status_code == 400
    assert code(authorize(client, project, "d1", license_key="nope", session_password="x")) == 101


def test_order_password_before_device_and_idempotency(client):
    project = project_with(session_password="s3cret")
    never = post(client, "usage", usage_body(project, "ghost", session_password="wrong"))
    assert code(never) == 102
    assert code(post(client, "usage", usage_body(project, "ghost", session_password="s3cret"))) == 4
    authorize(client, project, "d1", session_password="s3cret")
    report(client, project, "d1", report_id="r9", session_password="s3cret", barcode_scans=0)
    earlier = factories.SLOT - factories.minutes(3)
    conflict = usage_body(project, "d1", report_id="r9", slot=earlier, barcode_scans=0, session_password="wrong")
    assert code(post(client, "usage", conflict)) == 102
    conflict["session_password"] = "s3cret"
    assert code(post(client, "usage", conflict)) == 2


def test_order_password_before_validation_fields_before_item_rules(client):
    project = project_with(session_password="s3cret", allowed_app_ids=["com.acme.scanner"])
    mobile = {"client_type": "mobile", "app_id": "com.evil"}
    assert code(authorize(client, project, "m1", session_password="bad", **mobile)) == 102
    # 114 before 104: the project has no item for dlr at all.
    assert code(authorize(client, project, "m1", session_password="s3cret", product="dlr", **mobile)) == 114
    ok = {"client_type": "mobile", "app_id": "com.acme.scanner"}
    assert code(authorize(client, project, "m1", session_password="s3cret", product="dlr", **ok)) == 104


def test_order_allowed_domains_before_the_items_domain(client):
    project = project_with("per_domain", allowed_domains=["*.acme.com"])  # the item licenses example.com
    web = {"client_type": "web", "edition": "javascript"}
    refused = authorize(client, project, "w1", origin="https://app.other.com", **web)
    assert code(refused) == 103 and "allowed domains" in error_of(refused)["message"]
    by_item = authorize(client, project, "w1", origin="https://app.acme.com", **web)
    assert code(by_item) == 103 and "licensed domain" in error_of(by_item)["message"]


# --- validation fields, per client type ------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        ("*.acme.com", "https://app.acme.com", True),
        ("acme.com", "https://shop.acme.com:8443", True),  # the domain unit, any port
        ("*.acme.com", "https://acme.com.evil.net", False),
        ("ACME.COM", "https://App.Acme.Com", True),  # uppercase on both sides
        ("bücher.example", "https://www.xn--bcher-kva.example", True),  # IDN written, punycode sent
        ("xn--bcher-kva.example", "https://shop.BÜCHER.example", True),  # punycode written, IDN sent
        ("bücher.example", "https://buecher.example", False),
    ],
)
def test_allowed_domains_for_web(client, allowed, origin, ok):
    project = project_with(allowed_domains=[allowed])
    answer = authorize(client, project, "w1", client_type="web", origin=origin)
    assert (answer.status_code == 200) if ok else (code(answer) == 103), answer.json()


@pytest.mark.parametrize(("app_id", "ok"), [("com.acme.scanner", True), ("com.acme.Scanner", False), (None, False)])
def test_allowed_app_ids_for_mobile(client, app_id, ok):
    project = project_with(allowed_app_ids=["com.acme.scanner"])
    answer = authorize(client, project, "m1", client_type="mobile", app_id=app_id)
    assert (answer.status_code == 200) if ok else (code(answer) == 114)
    if not ok:
        assert error_of(answer)["name"] == "VALIDATION_FIELD_MISMATCH"


@pytest.mark.parametrize("client_type", ["desktop", "embedded", "server"])
@pytest.mark.parametrize(
    ("process_name", "platform", "ok"),
    [
        ("scanner.exe", "windows", True),
        ("SCANNER.EXE", "Windows", True),  # case-insensitive on Windows
        ("SCANNER.EXE", "win32", True),
        ("SCANNER.EXE", "linux", False),  # exact elsewhere
        ("Scanner.exe", None, False),
        ("other.exe", "windows", False),
        (None, "windows", False),
    ],
)
def test_allowed_process_names(client, client_type, process_name, platform, ok):
    option = "per_server" if client_type == "server" else "per_client_device"
    project = project_with(option, allowed_process_names=["scanner.exe"])
    fields = {"client_type": client_type, "process_name": process_name, "platform": platform}
    if client_type == "server":
        fields["edition"] = "server"
    answer = authorize(client, project, "p1", **fields)
    assert (answer.status_code == 200) if ok else (code(answer) == 114), answer.json()


def test_a_client_type_with_no_list_is_not_restricted(client):
    project = project_with(allowed_app_ids=["com.acme.scanner"], allowed_process_names=["scanner.exe"])
    assert authorize(client, project, "w1", client_type="web", origin="https://anything.example.org").status_code == 200
    project = project_with(allowed_domains=["acme.com"])
    assert authorize(client, project, "d1", client_type="desktop", process_name="x").status_code == 200
    assert authorize(client, project, "m1", client_type="mobile").status_code == 200


def test_bad_values_are_refused_and_nothing_changes():
    project = project_with(allowed_domains=["acme.com"])
    with pytest.raises(ProtectionError) as raised:
        set_protection(project, actor="cli:test", now=NOW, allowed_domains=["co.uk"], allowed_app_ids=["a"])
    assert "allowed_domains" in raised.value.errors
    project.refresh_from_db()
    assert project.allowed_domains == ["acme.com"] and project.allowed_app_ids == []


def test_each_change_is_audited_with_before_and_after():
    project = project_with()
    set_protection(project, actor="cli:test", now=NOW, allowed_app_ids=["com.a", "com.b"])
    audit = AuditLog.objects.filter(action="project.protection").latest("id")
    assert audit.before["allowed_app_ids"] == [] and audit.after["allowed_app_ids"] == ["com.a", "com.b"]
    assert audit.actor_name == "cli:test"


def test_order_rate_limit_before_key_and_password(client, settings):
    settings.API_RATE_LIMIT = "1/m"
    project = project_with(session_password="s3cret")
    assert code(authorize(client, project, "d1", session_password="wrong")) == 102
    assert code(authorize(client, project, "d1", session_password="wrong")) == 3  # the same device again
    assert code(authorize(client, project, "d2", license_key="nope")) == 101  # another device: its own limit
