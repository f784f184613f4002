"""Key sharing and clone flags (usage.anomalies): the API records client addresses; each flag is
raised on its scenario, with its evidence, and not on the near miss; the job emails and emits
once per project and day; the simulator's normal fleet raises none."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from devices.models import Decision
from licenses.models import OutboxEvent
from tests import factories
from tests.factories import NOW, SLOT, auth_body, move_clock, post, usage_body
from usage.anomalies import detect_anomalies, far_apart, network_of, project_flags
from usage.models import AnomalyNotice, ProjectAnomaly, UsageReport

pytestmark = [pytest.mark.django_db]


def authorize(client, project, uuid, address="127.0.0.1", **fields):
    return post(client, "authorize", auth_body(project, uuid, **fields), REMOTE_ADDR=address)


def report(client, project, uuid, report_id, slot=SLOT, address="127.0.0.1", **fields):
    return post(client, "usage", usage_body(project, uuid, report_id, slot, **fields), REMOTE_ADDR=address)


api = pytest.mark.usefixtures("frozen", "no_rate_limits")


def test_networks_are_24_and_48_blocks():
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("not an address") is None
    assert far_apart("203.0.113.7", "198.51.100.7") and not far_apart("203.0.113.7", "203.0.5.9")


@api
def test_the_api_records_the_client_address(client):
    item = factories.LicenseItemFactory()
    authorize(client, item.project, "a", address="203.0.113.7")
    report(client, item.project, "a", "r-1", address="2001:db8::1")
    assert Decision.objects.get(device_uuid="a").client_address == "203.0.113.7"
    assert UsageReport.objects.get(report_id="r-1").client_address == "2001:db8::1"


@api
@pytest.mark.parametrize("networks, flagged", [(20, False), (21, True)])
def test_many_networks_in_a_day(client, networks, flagged):
    item = factories.LicenseItemFactory(quantity=100)
    for i in range(networks):
        move_clock(NOW + timedelta(minutes=i))
        authorize(client, item.project, f"d-{i}", address=f"198.{i}.7.{i + 1}")
        authorize(client, item.project, f"e-{i}", address=f"198.{i}.7.200")  # same /24
    flags = project_flags(item.project, NOW.date())
    assert ("many_networks" in flags) is flagged
    if flagged:
        evidence = flags["many_networks"]["evidence"]
        assert evidence["networks"] == 21 and evidence["threshold"] == 20
        assert evidence["top"][0]["devices"] == 2


@api
@pytest.mark.parametrize(
    "minutes, second, flagged", [(4, "198.51.100.9", True), (4, "203.0.9.9", False), (30, "198.51.100.9", False)]
)
def test_one_device_from_far_apart_networks(client, minutes, second, flagged):
    item = factories.LicenseItemFactory()
    authorize(client, item.project, "a", address="203.0.113.5")
    move_clock(NOW + timedelta(minutes=minutes))
    report(client, item.project, "a", "r-1", slot=SLOT, barcode_scans=1, address=second)
    flags = project_flags(item.project, NOW.date())
    assert ("far_networks" in flags) is flagged
    if flagged:
        device = flags["far_networks"]["evidence"]["devices"][0]
        assert device["device_uuid"] == "a" and device["first"][1] == "203.0.113.5" and device["then"][1] == second


@api
def test_a_clock_running_backwards_and_not_a_late_batch(client):
    item = factories.LicenseItemFactory()
    authorize(client, item.project, "clone")
    authorize(client, item.project, "offline")
    for k in range(12):  # both report an hour of slots, live
        move_clock(NOW + timedelta(minutes=3 * k + 1))
        report(client, item.project, "clone", f"c-{k}", slot=SLOT + timedelta(minutes=3 * k))
    # "offline" was offline that hour: its buffered reports arrive late, oldest first, then live.
    move_clock(NOW + timedelta(minutes=40))
    for k in range(12):
        report(client, item.project, "offline", f"o-{k}", slot=SLOT + timedelta(minutes=3 * k))
    # "clone" names again a slot of 33 minutes before its latest, one it had reported.
    report(client, item.project, "clone", "c-back", slot=SLOT)
    flags = project_flags(item.project, NOW.date())
    assert list(flags) == ["clock_rollback"]
    evidence = flags["clock_rollback"]["evidence"]
    assert evidence["count"] == 1 and evidence["devices"][0]["device_uuid"] == "clone"
    assert evidence["devices"][0]["report_id"] == "c-back"


@api
@pytest.mark.parametrize("allowed, flagged", [([], True), (["*.site0.com", "*.site1.com"], False)])
def test_web_origins_from_many_domains(client, allowed, flagged):
    item = factories.LicenseItemFactory(edition="javascript", quantity=100)
    for i in range(6):
        authorize(
            client, item.project, f"w-{i}", client_type="web", edition="javascript", origin=f"https://app.site{i}.com"
        )
    item.project.allowed_domains = allowed + [f"*.site{i}.com" for i in range(2, 6)] if allowed else []
    item.project.save(update_fields=["allowed_domains"])
    flags = project_flags(item.project, NOW.date())
    assert ("foreign_domains" in flags) is flagged
    if flagged:
        assert flags["foreign_domains"]["evidence"]["domains"] == [f"site{i}.com" for i in range(6)]


@api
def test_the_job_writes_flags_and_notifies_once_a_day(client):
    item = factories.LicenseItemFactory()
    owner = factories.UserFactory(organization=item.project.organization, email="owner@example.com")
    assert owner
    authorize(client, item.project, "a", address="203.0.113.5")
    move_clock(NOW + timedelta(minutes=2))
    report(client, item.project, "a", "r-1", address="198.51.100.9")
    first = detect_anomalies(now=NOW + timedelta(minutes=30))
    again = detect_anomalies(now=NOW + timedelta(minutes=90))
    assert first["flags"] == 1 and first["notified"] == 1 and again["flags"] == 1 and again["notified"] == 0
    assert ProjectAnomaly.objects.get(project=item.project).kind == "far_networks"
    assert AnomalyNotice.objects.count() == 1
    assert len(mail.outbox) == 1 and "far-apart networks" in mail.outbox[0].body
    event = OutboxEvent.objects.get(type="project.anomaly")
    assert event.data["flags"][0]["kind"] == "far_networks"


@api
def test_run_job_knows_the_job(client):
    out = __import__("io").StringIO()
    call_command("run_job", "detect_anomalies", "--now", "2026-11-27T18:00:00Z", stdout=out)
    assert json.loads(out.getvalue()) == {"job": "detect_anomalies", "flags": 0, "notified": 0}


@pytest.mark.django_db(transaction=True)
def test_the_simulators_normal_fleet_raises_no_flag(live_server, settings):
    """A fleet with offline devices, injected network errors and releases, through HTTP."""
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "0"
    lic = factories.LicenseFactory(starts_at=timezone.now() - timedelta(days=40))
    project = factories.ProjectFactory(organization=lic.organization, name="fleet")
    factories.LicenseItemFactory(per_barcode_scan=True, project=project, license=lic, quantity=10**6, edition="mobile")
    factories.LicenseItemFactory(
        per_client_device=True, project=project, license=lic, quantity=30, edition="javascript"
    )
    factories.LicenseItemFactory(per_concurrent_device=True, product="dlr", project=project, license=lic, quantity=4)
    out = __import__("io").StringIO()
    call_command(
        "simulate_fleet", "--base-url", live_server.url, "--license-key", project.license_key, "--json",
        "--speed", "0", "--seed", "11", "--devices", "24", "--slots", "30", "--error-rate", "0.05", "--release",
        stdout=out, stderr=__import__("io").StringIO(),
    )  # fmt: skip
    assert UsageReport.objects.filter(device__project=project).count() > 200
    assert UsageReport.objects.exclude(client_address=None).exists()
    day = timezone.now().date()
    assert project_flags(project, day) == {}
    assert project_flags(project, day - timedelta(days=1)) == {}
