"""Offline registration (SPEC section 12): the registration response, the seat it holds, every
refusal it can meet, and ``register_offline_device``'s exact output and exit codes."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from devices.models import Decision, Device
from devices.offline import parse_offline_request, register_offline
from licenses.models import License
from licenses.protection import set_protection
from tests import factories
from tests.factories import NOW, authorize, error_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def request_json(device_uuid: str = "kiosk-1", **fields) -> str:
    body = {"device_uuid": device_uuid, "product": "dbr", "client_type": "desktop",
            "requested_at": "2026-11-27T17:00:00Z", "device_name": "Plant kiosk"}  # fmt: skip
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None})


def run(key: str, text: str, *, form: str = "space"):
    """(exit code, stdout, stderr) of the command, the request given on standard input."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--license-key", key] if form == "space" else [f"--license-key={key}"]
    stdin = io.TextIOWrapper(io.BytesIO(text.encode()))
    import sys

    saved = sys.stdin
    sys.stdin = stdin
    try:
        call_command("register_offline_device", *argv, "-", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def seats_item(**fields):
    fields.setdefault("quantity", 1)
    fields.setdefault("device_grace_percent", 0)
    return factories.LicenseItemFactory(**fields)


def state() -> tuple[int, int, list]:
    return Device.objects.count(), Decision.objects.count(), list(Device.objects.values_list("state", "active_until"))


def test_the_command_prints_the_offline_local_license_and_exits_0(tmp_path):
    item = seats_item(period="monthly")
    code, out, err = run(item.project.license_key, request_json())
    assert (code, err) == (0, "")
    token = out.strip()
    assert out == token + "\n" and token.count(".") == 2
    got = claims(token)
    assert got["offline"] is True and got["sub"] == "kiosk-1" and got["option"] == "per_client_device"
    assert got["exp"] == int(min(NOW + item.period_delta, item.license.expires_at).timestamp())
    device = Device.objects.get(device_uuid="kiosk-1")
    assert device.offline and device.state == Device.ACTIVE and device.active_until == NOW + item.period_delta
    assert device.device_name == "Plant kiosk"


def test_a_file_path_works_as_well_as_standard_input(tmp_path):
    item = seats_item()
    path = tmp_path / "request.json"
    path.write_text(request_json())
    out = io.StringIO()
    call_command("register_offline_device", f"--license-key={item.project.license_key}", str(path), stdout=out)
    assert claims(out.getvalue().strip())["offline"] is True


def test_exp_is_capped_by_the_license_expiry():
    lic = factories.LicenseFactory(starts_at=NOW - timedelta(days=300), expires_at=NOW + timedelta(days=10))
    item = seats_item(license=lic, period="yearly")
    code, out, _ = run(item.project.license_key, request_json())
    assert code == 0 and claims(out.strip())["exp"] == int(lic.expires_at.timestamp())


def test_a_server_is_registered_for_365_days_or_to_the_expiry():
    item = factories.LicenseItemFactory(per_server=True, quantity=1)
    code, out, _ = run(item.project.license_key, request_json(client_type="server", edition="server"))
    assert code == 0
    expected = min(NOW + timedelta(days=365), item.license.expires_at)
    assert claims(out.strip())["exp"] == int(expected.timestamp())


def test_an_offline_device_holds_its_seat_and_counts_against_the_limit(client):
    item = seats_item(quantity=1)
    assert run(item.project.license_key, request_json())[0] == 0
    refused = authorize(client, item.project, "online-1")
    assert error_of(refused)["code"] == 120
    code, _, err = run(item.project.license_key, request_json("kiosk-2"))
    assert code == 1 and err.startswith("error: 120 USAGE_EXCEEDED: 1 of 1 seats are taken")


def test_a_web_request_gets_its_origin_in_the_token():
    item = seats_item()
    code, out, _ = run(
        item.project.license_key, request_json(client_type="web", origin="https://Kiosk.Example.com:443")
    )
    assert code == 0 and claims(out.strip())["origin"] == "https://kiosk.example.com"


def refusal_cases():
    def shape(_):
        return "{not json", {}

    def missing(_):
        return json.dumps({"device_uuid": "x", "product": "dbr", "client_type": "desktop"}), {}

    return [shape, missing]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_json", "error: 1 INVALID_REQUEST: the request is not JSON"),
        ("missing_requested_at", "error: 1 INVALID_REQUEST: invalid request: requested_at is required"),
        ("unknown_key", "error: 101 LICENSE_KEY_INVALID: no project has this license key"),
        ("domain", "error: 103 DOMAIN_MISMATCH: origin https://evil.test is not in the project's allowed domains"),
        ("app_id", "error: 114 VALIDATION_FIELD_MISMATCH: app_id com.evil is not in the project's allowed app ids"),
        ("scan_only", "error: 104 NO_MATCHING_LICENSE: no item of this project serves an offline registration for"),
        ("expired", "error: 111 LICENSE_EXPIRED: license "),
        ("not_yet", "error: 112 LICENSE_NOT_YET_EFFECTIVE: license "),
        ("revoked", "error: 113 LICENSE_REVOKED: license "),
        ("full", "error: 120 USAGE_EXCEEDED: 1 of 1 seats are taken"),
    ],
)
def test_each_refusal_prints_its_code_and_exits_1_changing_nothing(case, expected):
    item = seats_item()
    key, body = item.project.license_key, request_json()
    if case == "bad_json":
        body = "{not json"
    elif case == "missing_requested_at":
        body = request_json(requested_at=None)
    elif case == "unknown_key":
        key = "no-such-key"
    elif case == "domain":
        set_protection(item.project, actor="cli:test", now=NOW, allowed_domains=["acme.com"])
        body = request_json(client_type="web", origin="https://evil.test")
    elif case == "app_id":
        set_protection(item.project, actor="cli:test", now=NOW, allowed_app_ids=["com.acme"])
        body = request_json(client_type="mobile", app_id="com.evil")
    elif case == "scan_only":
        item = factories.LicenseItemFactory(per_barcode_scan=True)
        key = item.project.license_key
    elif case in ("expired", "not_yet", "revoked"):
        lic = item.license
        if case == "expired":
            lic.starts_at, lic.expires_at = NOW - timedelta(days=400), NOW - timedelta(days=1)
        elif case == "not_yet":
            lic.starts_at, lic.expires_at = NOW + timedelta(days=1), NOW + timedelta(days=400)
        else:
            lic.status = License.REVOKED
        lic.save()
    elif case == "full":
        factories.DeviceFactory(item=item)
    before = state()
    code, out, err = run(key, body)
    assert (code, out) == (1, "")
    assert err.startswith(expected), err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert state() == before  # nothing changed, not even a decision


def test_a_key_starting_with_a_dash_works_in_both_forms():
    item = seats_item(quantity=5)
    item.project.license_key = "-dashKEY0123456789abcdefgh"
    item.project.save(update_fields=["license_key"])
    assert run("-dashKEY0123456789abcdefgh", request_json("a"), form="space")[0] == 0
    assert run("-dashKEY0123456789abcdefgh", request_json("b"), form="equals")[0] == 0


def test_export_usage_takes_a_key_starting_with_a_dash_in_both_forms():
    item = seats_item()
    item.project.license_key = "-dashKEY0123456789abcdefgh"
    item.project.save(update_fields=["license_key"])
    for argv in (["--license-key", "-dashKEY0123456789abcdefgh"], ["--license-key=-dashKEY0123456789abcdefgh"]):
        out = io.StringIO()
        call_command("export_usage", *argv, "--what", "devices", stdout=out)
        assert out.getvalue().startswith("device_uuid") or "," in out.getvalue().splitlines()[0]


def test_release_frees_an_offline_seat_for_bookkeeping(client):
    item = seats_item(quantity=1)
    run(item.project.license_key, request_json())
    from devices.services import release_device

    release_device(device=Device.objects.get(device_uuid="kiosk-1"), now=NOW, actor=factories.UserFactory())
    assert authorize(client, item.project, "online-1").status_code == 200


def test_register_offline_service_records_an_offline_decision_and_audit():
    item = seats_item()
    token = register_offline(item.project, parse_offline_request(request_json()), now=NOW, actor="cli:test")
    assert claims(token)["offline"] is True
    assert Decision.objects.get(device_uuid="kiosk-1").endpoint == Decision.OFFLINE
    from licenses.models import AuditLog

    assert AuditLog.objects.filter(action="device.register_offline").count() == 1


def test_simulate_fleet_reads_a_key_starting_with_a_dash_in_both_forms():
    from client.tools.management.commands.simulate_fleet import Command

    for argv in (["--license-key", "-dashKEY"], ["--license-key=-dashKEY"]):
        parsed = Command().create_parser("manage.py", "simulate_fleet").parse_args(argv)
        assert parsed.license_key == "-dashKEY"


def test_a_usage_report_from_an_offline_device_is_counted_but_does_not_extend_its_seat(client):
    """SPEC 12: an offline device holds its seat to exp; no contact refreshes it."""
    item = seats_item(per_client_device=True, period="monthly")
    assert run(item.project.license_key, request_json())[0] == 0
    until = Device.objects.get(device_uuid="kiosk-1").active_until
    factories.move_clock(NOW + timedelta(days=3))
    body = factories.report(client, item.project, "kiosk-1", report_id="r1", barcode_scans=2).json()
    assert body["status"] == "accepted"
    device = Device.objects.get(device_uuid="kiosk-1")
    assert device.active_until == until and device.last_seen_at == NOW + timedelta(days=3)
