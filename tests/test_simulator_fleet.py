"""simulate_fleet against a real server (pytest-django's live_server): a small fleet with offline
devices, injected network errors and releases; every report sent is counted exactly once, in the
answers and in the database, and a disagreement fails the command."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from devices.models import Device
from tests import factories
from usage.models import UsageReport


@pytest.fixture
def fleet_project(settings, transactional_db):
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "0"
    lic = factories.LicenseFactory(starts_at=timezone.now() - timedelta(days=40))
    project = factories.ProjectFactory(organization=lic.organization, name="fleet")
    factories.LicenseItemFactory(
        per_barcode_scan=True, project=project, license=lic, quantity=1_000_000, edition="mobile"
    )
    factories.LicenseItemFactory(
        per_page=True, product="dwt", project=project, license=lic, quantities={"core": 10**6, "ocr": 10**6}
    )
    factories.LicenseItemFactory(
        per_client_device=True, project=project, license=lic, quantity=20, edition="javascript"
    )
    factories.LicenseItemFactory(per_concurrent_device=True, product="dlr", project=project, license=lic, quantity=2)
    factories.LicenseItemFactory(per_server=True, project=project, license=lic, quantity=5)
    return project


def run(live_server, project, *args) -> tuple[dict, str]:
    out, err = _Capture(), _Capture()
    try:
        call_command(
            "simulate_fleet", "--base-url", live_server.url, "--license-key", project.license_key, "--json",
            "--speed", "0", "--seed", "7", *args, stdout=out, stderr=err,
        )  # fmt: skip
    finally:
        lines = out.getvalue().strip().splitlines()
    return json.loads(lines[-1]), out.getvalue() + err.getvalue()


class _Capture:
    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def getvalue(self):
        return "".join(self.parts)


@pytest.mark.slow
def test_it_counts_every_report_once_with_offline_devices_and_network_errors(live_server, fleet_project):
    summary, output = run(
        live_server, fleet_project,
        "--devices", "10", "--slots", "8", "--offline-fraction", "0.5", "--error-rate", "0.3", "--release",
    )  # fmt: skip
    assert summary["ok"], output
    sent, counted, server = summary["sent"], summary["counted"], summary["server"]
    assert sent == counted == {k: server[k] for k in ("reports", "barcode_scans", "pages")}
    assert sent["reports"] == UsageReport.objects.filter(device__project=fleet_project).count() > 20
    assert sent["barcode_scans"] > 0 and sent["pages"]["core"] > 0
    # The run exercised what it claims: retries after lost answers, offline flushes, releases.
    assert summary["client"]["lost_responses"] > 0 and summary["duplicates_answered"] > 0
    assert summary["offline_flushes"] > 0 and summary["offline_flushed_reports"] > summary["offline_flushes"]
    assert server["devices"] == 10 and server["released"] == 10 == summary["releases"]
    assert set(Device.objects.filter(project=fleet_project).values_list("state", flat=True)) == {Device.RELEASED}
    assert "OK: every report sent was counted exactly once" in output


@pytest.mark.slow
def test_it_fails_when_the_server_counts_differently(live_server, fleet_project, monkeypatch):
    from client.dls_client import sdk

    real_count = sdk.Deduplicator.count
    monkeypatch.setattr(sdk.Deduplicator, "count", lambda self, s: real_count(self, s) + 1)  # an SDK bug
    with pytest.raises(CommandError, match="sent and counted disagree"):
        run(live_server, fleet_project, "--devices", "3", "--slots", "3", "--options", "per_barcode_scan",
            "--raw-fraction", "1")  # fmt: skip


def test_it_refuses_a_run_longer_than_the_api_accepts(fleet_project):
    with pytest.raises(CommandError, match="slots must be"):
        call_command("simulate_fleet", "--license-key", fleet_project.license_key, "--slots", "20000", "--options",
                     "per_server")  # fmt: skip
