"""What-if replay (usage.replay): with the item's own policy it reproduces every recorded
decision of a simulated month driven through the real API; with a changed policy it refuses what
a direct calculation says; the what_if command's JSON and its errors."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from licenses.clock import slot_start_of
from tests import factories
from tests.factories import NOW, authorize, move_clock, release, report
from usage.replay import PolicyError, Replay, parse_changes, what_if

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]

START = NOW
DAYS = 30


def drive_month(client, item, *, devices: int, seed: int, scans: int = 40) -> None:
    """A month of a fleet through the API: every 8 hours some devices contact the server; a device
    without a seat authorizes, one with a seat reports (and authorizes again when told its seat
    is lost); now and then one uninstalls (release)."""
    rng = random.Random(seed)
    seated: dict[str, bool] = {}
    n = 0
    for step in range(DAYS * 3):
        at = START + timedelta(hours=8 * step)
        for k in range(devices):
            if rng.random() > 0.4:
                continue
            uuid = f"dev-{k}"
            n += 1
            move_clock(at + timedelta(seconds=7 * k + 1))
            if not seated.get(uuid):
                seated[uuid] = authorize(client, item.project, uuid).status_code == 200
                continue
            if rng.random() < 0.04:
                release(client, item.project, uuid)
                seated[uuid] = False
                continue
            counts = {"barcode_scans": rng.randint(1, scans)}
            body = report(client, item.project, uuid, f"r-{n}", slot=slot_start_of(at), **counts).json()
            if not body.get("allowed") and body.get("error", {}).get("code") == 4:
                seated[uuid] = False


def drive_sessions(client, item, *, devices: int, seed: int) -> None:
    """Concurrent use: once a day, a busy 18 minutes (six slots); each device in it authorizes on
    its first report and reports in most slots (a slot missed loses its seat: authorize again)."""
    rng = random.Random(seed)
    n = 0
    for day in range(DAYS):
        seated: set[str] = set()
        for slot_k in range(6):
            slot = START + timedelta(days=day, hours=9, minutes=3 * slot_k)
            for k in range(devices):
                uuid = f"dev-{k}"
                if rng.random() > 0.6:
                    continue
                move_clock(slot + timedelta(seconds=5 * k + 2))
                if uuid not in seated:
                    authorize(client, item.project, uuid)
                    seated.add(uuid)
                n += 1
                body = report(client, item.project, uuid, f"r-{n}", slot=slot, barcode_scans=1).json()
                if body.get("error", {}).get("code") == 4:
                    seated.discard(uuid)


def mismatches(item, *, changes=None):
    replay = Replay(item, start=START, end=START + timedelta(days=DAYS + 1), changes=changes or {})
    outcomes = list(replay.outcomes())
    wrong = [o for o in outcomes if (o.allowed, o.code) != (o.event.allowed, o.event.code)]
    return outcomes, wrong


def test_it_reproduces_every_decision_of_a_simulated_month_of_seats(client):
    item = factories.LicenseItemFactory(
        quantity=5, device_grace_percent=20, period="daily", license__expires_at=NOW + timedelta(days=300)
    )
    drive_month(client, item, devices=10, seed=1)
    outcomes, wrong = mismatches(item)
    kinds = {o.event.kind for o in outcomes}
    refused = [o for o in outcomes if not o.event.allowed]
    assert {"authorize", "usage", "release"} <= kinds
    assert len(outcomes) > 250 and len(refused) > 10  # the ceiling (6) and lost seats were hit
    assert {o.rule for o in refused} >= {"seats_exhausted", "seat_lost"}
    assert wrong == []


def test_it_reproduces_every_decision_of_a_simulated_month_of_concurrency(client):
    item = factories.LicenseItemFactory(
        per_concurrent_device=True,
        quantity=3,
        overuse_percent=34,
        overuse_budget=12,
        license__expires_at=NOW + timedelta(days=300),
    )
    drive_sessions(client, item, devices=5, seed=2)
    outcomes, wrong = mismatches(item)
    rules_seen = {o.rule for o in outcomes}
    assert {"slot_within_quantity", "slot_overuse", "overuse_budget_spent"} <= rules_seen
    assert wrong == []


def test_it_reproduces_a_scan_quota_running_out(client):
    item = factories.LicenseItemFactory(
        per_barcode_scan=True, quantity=2000, license__expires_at=NOW + timedelta(days=300)
    )
    drive_month(client, item, devices=5, seed=3)
    outcomes, wrong = mismatches(item)
    assert any(o.rule == "quota_exhausted" for o in outcomes)
    assert wrong == []
    smaller = what_if(item, start=START, end=START + timedelta(days=DAYS + 1), changes={"quantity": 1000})
    assert smaller["refused"] > smaller["actual_refused"] > 0


def test_a_smaller_quantity_refuses_exactly_the_devices_beyond_it(client):
    """Ten devices take a seat one after another and keep reporting; with 6 seats and no grace the
    7th to 10th authorizations are the refused ones and nothing of the first six changes."""
    item = factories.LicenseItemFactory(quantity=10, device_grace_percent=0)
    order = [f"d-{k}" for k in (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)]
    for i, uuid in enumerate(order):
        move_clock(NOW + timedelta(minutes=i))
        assert authorize(client, item.project, uuid).status_code == 200
    for day in range(1, 4):
        for i, uuid in enumerate(order):
            move_clock(NOW + timedelta(days=day, minutes=i))
            assert report(
                client, item.project, uuid, f"r-{day}-{i}", slot=slot_start_of(NOW + timedelta(days=day))
            ).json()["allowed"]
    end = NOW + timedelta(days=5)
    same = what_if(item, start=NOW, end=end, changes={})
    assert same["refused"] == same["actual_refused"] == 0 and same["differs"] == 0
    result = what_if(item, start=NOW, end=end, changes={"quantity": 6})
    assert result["actual_refused"] == 0
    assert result["refused"] == 4 and result["per_rule"] == {"seats_exhausted": 4}
    assert result["sample_devices"] == sorted(order[6:])
    assert result["devices_refused"] == 4 and result["reports_without_seat"] == 12
    assert result["per_day"][0] == {
        "day": NOW.date().isoformat(),
        "refused": 4,
        "actual_refused": 0,
        "devices": 4,
        "actual_devices": 0,
    }
    # With 10 % grace, 6 seats admit a 7th device (floor(6 x 1.1) = 6: still 6) and 7 seats admit 7.
    assert what_if(item, start=NOW, end=end, changes={"quantity": 7, "device_grace_percent": 20})["refused"] == 2


def test_a_window_starting_later_starts_from_the_seats_held_then(client):
    item = factories.LicenseItemFactory(quantity=10, device_grace_percent=0)
    for i in range(8):
        move_clock(NOW + timedelta(minutes=i))
        authorize(client, item.project, f"d-{i}")
    move_clock(NOW + timedelta(days=2))
    for i in range(8, 10):
        authorize(client, item.project, f"d-{i}")
    result = what_if(item, start=NOW + timedelta(days=1), end=NOW + timedelta(days=3), changes={"quantity": 9})
    assert result["authorizations"] == 2 and result["refused"] == 1  # 8 held at the start, room for one


def test_the_command_prints_one_json_object(client):
    item = factories.LicenseItemFactory(quantity=2, device_grace_percent=0)
    for i in range(4):
        move_clock(NOW + timedelta(minutes=i))
        authorize(client, item.project, f"d-{i}")
    out = StringIO()
    call_command(
        "what_if",
        "--license-key",
        item.project.license_key,
        "--item",
        str(item.pk),
        "--set",
        "quantity=3",
        "--from",
        NOW.date().isoformat(),
        "--to",
        (NOW + timedelta(days=1)).date().isoformat(),
        "--recommend",
        stdout=out,
    )
    body = json.loads(out.getvalue())
    assert body["refused"] == 1 and body["actual_refused"] == 2
    assert body["per_rule"] == {"seats_exhausted": 1} and body["actual_per_rule"] == {"seats_exhausted": 2}
    assert body["per_day"][0]["refused"] == 1
    assert body["right_quantity"]["none_refused"]["quantity"] == 4


@pytest.mark.parametrize(
    "args, field",
    [
        (["--set", "quantity=zero"], "--set quantity"),
        (["--set", "quantity=0"], "--set quantity"),
        (["--set", "overuse_percent=5"], "--set overuse_percent"),
        (["--set", "dedup_interval_ms=100"], "--set dedup_interval_ms"),
        (["--set", "quantity"], "--set"),
        (["--item", "999999"], "--item"),
        (["--from", "yesterday"], "--from"),
        (["--to", "2027-06-01"], "--to"),
        (["--license-key", "nope"], "--license-key"),
    ],
)
def test_bad_input_names_the_field(args, field):
    item = factories.LicenseItemFactory(quantity=2)
    base = {
        "--license-key": item.project.license_key,
        "--item": str(item.pk),
        "--from": "2026-11-01",
        "--to": "2026-11-28",
    }
    extra = dict(zip(args[::2], args[1::2], strict=True))
    argv = [v for k, val in {**base, **{k: v for k, v in extra.items() if k != "--set"}}.items() for v in (k, val)]
    if "--set" in extra:
        argv += ["--set", extra["--set"]]
    with pytest.raises(CommandError) as raised:
        call_command("what_if", *argv, stdout=StringIO())
    assert str(raised.value).startswith(field + ":")


def test_parse_changes_reads_page_modules():
    item = factories.LicenseItemFactory(per_page=True, product="dwt", quantities={"core": 100, "ocr": 5})
    assert parse_changes(item, ["quantities.ocr=50"]) == {"quantities": {"core": 100, "ocr": 50}}
    with pytest.raises(PolicyError, match="webcam"):
        parse_changes(item, ["quantities.webcam=5"])
