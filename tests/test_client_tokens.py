"""The reference client's checks of a local license (SPEC section 7): verified with joserfc
against the JWKS it fetched, refused when copied to another origin; and its ``offline-request``
command (SPEC section 12)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from client.dls_client.__main__ import main
from client.dls_client.sdk import ApiClient, Device, DeviceProfile
from client.dls_client.tokens import LocalLicenseRefused, LocalLicenseVerifier, normalize_origin
from devices.offline import parse_offline_request
from tests import factories

pytestmark = pytest.mark.usefixtures("no_rate_limits")


@pytest.fixture
def web_item(transactional_db):
    return factories.LicenseItemFactory(per_domain=True, domain="example.com")


def web_device(live_server, item, origin: str, verifier) -> Device:
    profile = DeviceProfile(product="dbr", client_type="web", edition="javascript", origin=origin)
    return Device(ApiClient(live_server.url), item.project.license_key, "w-1", profile, verifier=verifier)


def test_a_token_verifies_on_its_own_origin_and_is_refused_on_another(live_server, web_item):
    own = LocalLicenseVerifier.fetch(live_server.url, origin="https://App.Example.com:443")
    device = web_device(live_server, web_item, "https://app.example.com", own)
    answer = device.authorize()
    assert answer.status_code == 200 and device.authorized
    token = device.local_license
    assert own.verify(token)["origin"] == "https://app.example.com"
    copied = LocalLicenseVerifier.fetch(live_server.url, origin="https://evil.example.org")
    with pytest.raises(LocalLicenseRefused, match="issued to https://app.example.com"):
        copied.verify(token)
    outside_a_page = LocalLicenseVerifier.fetch(live_server.url)
    with pytest.raises(LocalLicenseRefused):
        outside_a_page.verify(token)


def test_the_sdk_refuses_an_authorization_whose_token_names_another_origin(live_server, web_item):
    # The server answers for the body's origin; this SDK runs on another one (a copied config).
    other = LocalLicenseVerifier.fetch(live_server.url, origin="https://shop.example.com")
    device = web_device(live_server, web_item, "https://app.example.com", other)
    answer = device.authorize()
    assert not device.authorized and answer.body["error"]["name"] == "LOCAL_LICENSE_REFUSED"


def test_a_tampered_or_expired_token_is_refused(live_server, web_item):
    verifier = LocalLicenseVerifier.fetch(live_server.url, origin="https://app.example.com")
    device = web_device(live_server, web_item, "https://app.example.com", verifier)
    device.authorize()
    header, payload, signature = device.local_license.split(".")
    with pytest.raises(LocalLicenseRefused, match="signature"):
        verifier.verify(f"{header}.{payload}x.{signature}")
    exp = verifier.verify(device.local_license)["exp"]
    with pytest.raises(LocalLicenseRefused, match="expired"):
        verifier.verify(device.local_license, now=exp)


def test_the_client_imports_nothing_of_the_server():
    import ast
    from pathlib import Path

    for path in Path("client/dls_client").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in {
                    "licenses",
                    "devices",
                    "usage",
                    "api",
                    "portal",
                    "dls_admin",
                    "django",
                }


@pytest.mark.parametrize(("origin", "expected"), [("HTTPS://Bücher.Example:443", "https://xn--bcher-kva.example"),
                                                  ("http://localhost:8000/", "http://localhost:8000")])  # fmt: skip
def test_origins_are_normalized_like_the_server(origin, expected):
    from licenses.domains import normalize_origin as server_normalize

    assert normalize_origin(origin) == expected == server_normalize(origin)


def test_offline_request_writes_what_register_offline_device_reads(tmp_path, capsys):
    out = tmp_path / "req.json"
    argv = ["offline-request", "--device-uuid", "kiosk-1", "--product", "dbr", "--client-type", "desktop",
            "--platform", "windows", "--process-name", "scanner.exe", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    body = json.loads(out.read_text())
    assert "license_key" not in body and "session_password" not in body
    assert datetime.strptime(body["requested_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    parsed = parse_offline_request(out.read_text())
    assert (parsed.device_uuid, parsed.process_name) == ("kiosk-1", "scanner.exe")
    assert main(["offline-request", "--device-uuid", "w", "--product", "dbr", "--client-type", "web"]) == 2
    assert main(["offline-request", "--device-uuid", "w", "--product", "dbr", "--client-type", "mobile"]) == 0
    assert json.loads(capsys.readouterr().out)["client_type"] == "mobile"


def test_the_sdk_sends_the_session_password_and_validation_fields(live_server, transactional_db):
    from licenses.protection import set_protection
    from tests.factories import NOW
    from usage.models import UsageReport

    item = factories.LicenseItemFactory(quantity=5)
    set_protection(item.project, actor="cli:test", now=NOW, session_password="pw", allowed_process_names=["scan.exe"])
    bare = DeviceProfile(product="dbr", client_type="desktop")
    assert Device(ApiClient(live_server.url), item.project.license_key, "d-0", bare).authorize().error_code == 102
    profile = DeviceProfile(product="dbr", client_type="desktop", session_password="pw", process_name="SCAN.EXE",
                            platform="windows")  # fmt: skip
    device = Device(ApiClient(live_server.url), item.project.license_key, "d-1", profile)
    assert device.authorize().status_code == 200
    from client.dls_client.sdk import Report, slot_start_of

    report = Report(report_id="r-1", slot_start=slot_start_of(datetime.now(UTC)), barcode_scans=1)
    assert device.send(report).status_code == 200 and UsageReport.objects.count() == 1
    assert device.release().status_code == 200
