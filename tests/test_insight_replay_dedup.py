"""What-if with another dedup interval (docs/insight.md): a report's raw sightings are stored with
it (``UsageReport.raw_sightings``, in its own insert, purged with it); a replay with the item's own
interval counts every report exactly as recorded; a longer interval counts exactly what a direct
calculation over the sightings says, and the quota decisions follow; reports without sightings
count as recorded."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from licenses.clock import slot_start_of
from tests import factories
from tests.factories import NOW, authorize, move_clock, report
from usage.dedup import Sighting
from usage.jobs import purge_old_data
from usage.models import UsageReport
from usage.replay import Replay, what_if
from usage.sightings_store import PackError, pack, unpack

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]

T0 = int(NOW.timestamp() * 1000)
DEVICES = ("cam-0", "cam-1", "cam-2")
REPORTS = 30  # per device, one a slot
GAPS_MS = (0, 300, 1500, 2500, 3500, 6000, 11000)  # 0: the same barcode twice in one frame


def plan(seed: int = 7) -> dict[str, list[dict]]:
    """Per device, its reports in order: each with sightings of a few barcodes (ts rising, gaps
    above and below 3 s and 10 s, repeats within a frame, several barcodes in one frame), every
    fifth also with an SDK count, every seventh with no sightings at all."""
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {}
    for uuid in DEVICES:
        ts, frame, reports = T0, 0, []
        for r in range(REPORTS):
            sightings = []
            if r % 7 != 3:
                for _ in range(rng.randint(1, 25)):
                    gap = rng.choice(GAPS_MS)
                    ts += gap
                    frame += 1 if gap else 0
                    text = rng.choice(["ABC", "ABC", "XYZ", "4006381333931"])
                    fmt = "EAN_13" if text.isdigit() else "QR_CODE"
                    sightings.append({"ts_ms": ts, "frame": frame, "format": fmt, "text": text})
            rng.shuffle(sightings)  # the server takes them in (ts_ms, frame) order
            reports.append({"sightings": sightings, "barcode_scans": 2 if r % 5 == 0 else 0})
        out[uuid] = reports
    return out


def direct_count(reports: list[dict], interval_ms: int) -> int:
    """SPEC section 4 by hand: per format and text, a sighting counts when it comes more than the
    interval after the previous sighting of it (counted or not); the same barcode twice in one
    frame once; plus what the SDK counted."""
    last: dict[tuple[str, str], int] = {}
    seen_in_frame: set[tuple[int, str, str]] = set()
    total = 0
    for r in reports:
        total += r["barcode_scans"]
        for s in sorted(r["sightings"], key=lambda s: (s["ts_ms"], s["frame"])):
            key = (s["format"], s["text"])
            in_frame = (s["frame"], *key)
            if in_frame not in seen_in_frame and (key not in last or s["ts_ms"] - last[key] > interval_ms):
                total += 1
                seen_in_frame.add(in_frame)
            last[key] = max(last.get(key, s["ts_ms"]), s["ts_ms"])
    return total


def drive(client, item, reports_of: dict[str, list[dict]]) -> None:
    for k, uuid in enumerate(DEVICES):
        move_clock(NOW + timedelta(seconds=k))
        assert authorize(client, item.project, uuid).status_code == 200
    for r in range(REPORTS):
        for k, uuid in enumerate(DEVICES):
            at = NOW + timedelta(minutes=3 * r + 1, seconds=k)
            move_clock(at)
            body = {n: v for n, v in reports_of[uuid][r].items() if v}
            response = report(client, item.project, uuid, f"r-{r}", slot=slot_start_of(at), **body)
            assert response.status_code == 200, response.content


def window(item, interval_ms: int):
    replay = Replay(
        item, start=NOW, end=NOW + timedelta(days=1), changes={"dedup_interval_ms": interval_ms}
    )  # fmt: skip
    outcomes = []
    for outcome in replay.outcomes():
        replay.result.add(outcome)
        if outcome.event.kind == "usage":
            outcomes.append(outcome)
    return replay, outcomes


def test_the_items_own_interval_reproduces_every_recorded_count(client):
    reports_of = plan()
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000, dedup_interval_ms=3000)
    drive(client, item, reports_of)
    replay, outcomes = window(item, 3000)
    assert len(outcomes) == REPORTS * len(DEVICES)
    assert [o.counted for o in outcomes] == [o.event.counted for o in outcomes]
    with_sightings = sum(1 for rs in reports_of.values() for r in rs if r["sightings"])
    assert replay.result.reports_deduplicated == with_sightings > 0
    recorded = sum(o.event.counted.get("barcode_scans", 0) for o in outcomes)
    assert recorded == sum(direct_count(rs, 3000) for rs in reports_of.values())
    assert replay.result.barcode_scans == replay.result.actual_barcode_scans == recorded
    assert replay.result.differs == 0


def test_a_longer_interval_counts_what_a_direct_calculation_says_and_refuses_accordingly(client):
    reports_of = plan()
    long_total = sum(direct_count(rs, 10_000) for rs in reports_of.values())
    short_total = sum(direct_count(rs, 3000) for rs in reports_of.values())
    assert short_total > long_total + 10  # the plan's 3.5 s and 6 s gaps count only at 3 s
    # A quota the recorded counts ran past and the longer interval would not have reached.
    item = factories.LicenseItemFactory(
        per_barcode_scan=True, quantity=long_total + 1, quota_grace_percent=0, dedup_interval_ms=3000
    )
    drive(client, item, reports_of)
    replay, outcomes = window(item, 10_000)
    assert replay.result.barcode_scans == long_total
    assert replay.result.actual_barcode_scans == short_total
    per_device = defaultdict(int)
    for o in outcomes:
        per_device[o.event.device_uuid] += (o.counted or {}).get("barcode_scans", 0)
    assert dict(per_device) == {uuid: direct_count(rs, 10_000) for uuid, rs in reports_of.items()}
    assert replay.result.actual_refused > 0 and replay.result.refused == 0
    assert all(o.allowed for o in outcomes)


def test_reports_without_sightings_count_as_recorded(client):
    reports_of = plan()
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000)
    drive(client, item, reports_of)
    _, outcomes = window(item, 60_000)
    plain = [o for o in outcomes if o.event.sightings is None]
    assert len(plain) == len(DEVICES) * len([r for r in range(REPORTS) if r % 7 == 3])
    assert all(o.counted == o.event.counted for o in plain)
    assert any(o.counted != o.event.counted for o in outcomes if o.event.sightings is not None)


def test_a_window_starting_later_remembers_the_barcodes_seen_just_before(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000, dedup_interval_ms=3000)
    authorize(client, item.project, "cam")
    held = [{"ts_ms": T0 + 1000 * i, "frame": i, "format": "QR_CODE", "text": "ABC"} for i in range(10)]
    move_clock(NOW + timedelta(minutes=1))
    report(client, item.project, "cam", "r-0", slot=slot_start_of(NOW), sightings=held[:5])
    move_clock(NOW + timedelta(minutes=4))
    report(client, item.project, "cam", "r-1", slot=slot_start_of(NOW + timedelta(minutes=4)), sightings=held[5:])
    later = Replay(
        item, start=NOW + timedelta(minutes=3), end=NOW + timedelta(hours=1), changes={"dedup_interval_ms": 500}
    )
    (outcome,) = [o for o in later.outcomes() if o.event.kind == "usage"]
    assert outcome.event.counted == {} and outcome.counted == {"barcode_scans": 5}  # 1 s apart > 500 ms
    same = Replay(
        item, start=NOW + timedelta(minutes=3), end=NOW + timedelta(hours=1), changes={"dedup_interval_ms": 3000}
    )
    assert [o.counted for o in same.outcomes() if o.event.kind == "usage"] == [{}]  # held since r-0


def test_the_command_takes_the_interval(client):
    reports_of = plan()
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000)
    drive(client, item, reports_of)
    out = StringIO()
    day = NOW.date()
    call_command(
        "what_if", "--license-key", item.project.license_key, "--item", str(item.pk),
        "--set", "dedup_interval_ms=10000", "--from", day.isoformat(), "--to", (day + timedelta(days=1)).isoformat(),
        stdout=out,
    )  # fmt: skip
    body = json.loads(out.getvalue())
    assert body["changed"] == {"dedup_interval_ms": 10000}
    assert body["barcode_scans"] == sum(direct_count(rs, 10_000) for rs in reports_of.values())
    assert body["actual_barcode_scans"] == sum(direct_count(rs, 3000) for rs in reports_of.values())
    assert (
        what_if(item, start=NOW, end=NOW + timedelta(days=1), changes={})["barcode_scans"]
        == body["actual_barcode_scans"]
    )


@pytest.mark.django_db(transaction=True)  # PostgreSQL drops a partition only without pending FK checks
def test_sightings_are_stored_with_their_report_and_purged_with_it(client, settings):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    authorize(client, item.project, "cam")
    sightings = [
        {"ts_ms": T0 + 5000, "frame": 2, "format": "QR_CODE", "text": "Grüße ✓"},
        {"ts_ms": T0, "frame": 1, "format": "QR_CODE", "text": "Grüße ✓"},
        {"ts_ms": T0, "frame": 1, "format": "QR_CODE", "text": "Grüße ✓"},
        {"ts_ms": T0, "frame": 1, "format": "EAN_13", "text": "4006381333931"},
    ]
    report(client, item.project, "cam", "r-1", sightings=sightings, barcode_scans=4)
    report(client, item.project, "cam", "r-2", barcode_scans=4)
    with_sightings, without = UsageReport.objects.order_by("id")
    counted, stored = unpack(with_sightings.raw_sightings)
    assert counted == 3 and with_sightings.counted == {"barcode_scans": 7}
    ordered = sorted(sightings, key=lambda s: (s["ts_ms"], s["frame"]))
    assert stored == [Sighting(s["ts_ms"], s["frame"], s["format"], s["text"]) for s in ordered]
    assert without.raw_sightings is None
    # Past retention by more than a month: on PostgreSQL a month's partition goes once all of it is.
    purge_old_data(now=NOW + timedelta(days=settings.REPORT_RETENTION_DAYS + 40))
    assert not UsageReport.objects.exists()


def test_pack_round_trips_and_refuses_what_is_not_packed():
    many = [Sighting(T0 + 33 * i, i, "QR_CODE", f"T{i % 50}") for i in range(10_000)]
    blob = pack(many, counted=123)
    assert unpack(blob) == (123, many)
    assert len(blob) < 40_000  # a few bytes a sighting
    assert unpack(pack([], counted=0)) == (0, [])
    for bad in (b"", b"XX" + bytes(8), pack(many[:3], counted=1)[:-4]):
        with pytest.raises((PackError, ValueError)):
            unpack(bad)


def test_the_item_page_offers_the_interval_for_scan_items(client):
    reports_of = plan()
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100_000)
    drive(client, item, reports_of)
    client.force_login(factories.UserFactory(organization=item.project.organization), backend=factories.MODEL_BACKEND)
    url = f"/projects/{item.project.pk}/items/{item.pk}/what-if/"
    assert 'name="dedup_interval_ms"' in client.get(url).content.decode()
    day = NOW.date()
    page = client.post(url, {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat(),
                             "dedup_interval_ms": "10000"})  # fmt: skip
    assert page.status_code == 200
    result = page.context["result"]
    assert result["barcode_scans"] == sum(direct_count(rs, 10_000) for rs in reports_of.values())
    assert 'id="what-if-scans"' in page.content.decode()
    seats = factories.LicenseItemFactory(project=item.project, license=item.license, quantity=5)
    assert (
        'name="dedup_interval_ms"'
        not in client.get(f"/projects/{item.project.pk}/items/{seats.pk}/what-if/").content.decode()
    )
