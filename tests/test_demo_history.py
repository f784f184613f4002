"""seed_demo --history: a month of demo history through the services (portal.demo), coarse enough
to take seconds, still showing every option, refusals and idle devices; idempotent; and the
key-sharing project acme-partner-web raising the four anomaly flags while the demo's other
projects, whose requests carry client addresses too, raise none (docs/insight.md)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from devices.models import Decision, Device
from licenses import rules
from licenses.models import LicenseItem, Project
from portal.demo.sharing import burst_end
from tests.factories import row_counts
from usage.anomalies import detect_anomalies
from usage.models import ConcurrencyRollup, ProjectAnomaly, UsageReport, UsageRollup

pytestmark = pytest.mark.django_db
FLAGS = {"many_networks", "foreign_domains", "far_networks", "clock_rollback"}
AFTERNOON = datetime(2026, 12, 2, 14, 40, 7, tzinfo=UTC)  # a Wednesday


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", history=True, stdout=out, **options)
    return out.getvalue()


def flags_by_project() -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for name, day, kind in ProjectAnomaly.objects.values_list("project__name", "day", "kind"):
        found.setdefault(name, set()).add((day.isoformat(), kind))
    return found


@pytest.mark.django_db(transaction=True)  # on PostgreSQL the projects then run side by side, a connection each
def test_a_month_of_every_option_with_refusals_and_idle_devices_then_nothing_on_a_second_run():
    with time_machine.travel(AFTERNOON, tick=False):
        output = seed()
        now = AFTERNOON
        assert "Demo history:" in output and "for 6 project(s)" in output
        calls = int(output.split("Demo history: ")[1].split(" device requests")[0].replace(",", ""))
        assert 300 < calls < 900  # coarse reports: seconds, not minutes
        # Every option has devices that used it.
        used = set(Device.objects.exclude(item=None).values_list("item__option", flat=True))
        assert used == set(rules.OPTIONS)
        # Refusals of each kind the demo explains: seats, the concurrency ceiling, servers.
        refused = set(Decision.objects.filter(allowed=False).values_list("project__name", "rule"))
        assert {
            ("acme-web", "seats_exhausted"),
            ("globex-labels", "slot_ceiling_reached"),
            ("globex-backend", "servers_exhausted"),
        } <= refused
        assert Decision.objects.filter(rule="slot_overuse").exists()
        web = Project.objects.get(name="acme-web")
        seats = LicenseItem.objects.get(project=web, option=rules.PER_CLIENT_DEVICE, license__license_id__endswith="-2")
        holding = Device.objects.holding_seat(now).filter(item=seats)
        assert holding.count() == seats.seat_ceiling == 33  # 30 seats + 3 grace, all taken
        assert holding.filter(last_seen_at__lt=now - timedelta(days=30)).count() == 6  # idle, to release
        # A month of usage and today's: the rollups ran once at the end.
        days = UsageRollup.objects.filter(granularity=UsageRollup.DAY).values_list("bucket_start", flat=True)
        assert min(days) <= now - timedelta(days=28) and max(days).date() == now.date()
        assert UsageRollup.objects.filter(granularity=UsageRollup.TWO_HOURS, bucket_start__date=now.date()).count() > 3
        assert ConcurrencyRollup.objects.filter(overuse_devices__gt=0).exists()
        # Recorded as through the API: every request has its client address.
        assert not Decision.objects.filter(client_address=None).exists()
        assert not UsageReport.objects.filter(client_address=None).exists()
        counts = row_counts()
        second = seed()
    assert "Demo history already present: nothing changed." in second
    assert row_counts() == counts


@pytest.mark.parametrize(
    "at",
    [AFTERNOON, datetime(2026, 12, 2, 0, 20, tzinfo=UTC)],  # just after midnight: the burst is yesterday's
    ids=["afternoon", "after-midnight"],
)
def test_the_key_sharing_project_raises_every_flag_and_no_other_project_any(at):
    with time_machine.travel(at, tick=False):
        seed()
        day = burst_end(at).date().isoformat()
        assert flags_by_project() == {"acme-partner-web": {(day, kind) for kind in FLAGS}}
        # The evidence names the copied device and the shared networks and domains.
        flags = {a.kind: a for a in ProjectAnomaly.objects.all()}
        assert flags["far_networks"].evidence["devices"][0]["device_uuid"] == "partner-2"
        assert flags["clock_rollback"].evidence["devices"][0]["device_uuid"] == "partner-2"
        assert flags["many_networks"].evidence["networks"] > 20
        assert "brightcart.example" in flags["foreign_domains"].evidence["domains"]
        # The hourly job finds the same again, and still nothing elsewhere.
        assert detect_anomalies(now=at + timedelta(minutes=30))["flags"] == 4
    assert set(flags_by_project()) == {"acme-partner-web"}
