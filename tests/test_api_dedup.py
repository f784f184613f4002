"""Server-side barcode dedup (SPEC section 4): the three cases of the seed, the interval, the
interval taken from the item, and the memory living across reports."""

from __future__ import annotations

import pytest

from tests import factories
from tests.factories import SLOT, authorize, report
from usage.dedup import Sighting, count_sightings
from usage.models import SightingMemory

pytestmark = pytest.mark.usefixtures("frozen", "no_rate_limits")

T0 = 1_795_800_240_000  # ms, NOW


def s(ts_ms: int, frame: int, text: str = "ABC", format: str = "QR_CODE") -> Sighting:
    return Sighting(ts_ms, frame, format, text)


def counted(sightings, interval_ms: int = 3000, memory=None) -> int:
    return count_sightings(sightings, interval_ms=interval_ms, memory=memory or {})[0]


def test_two_identical_barcodes_in_one_frame_count_once():
    assert counted([s(T0, 1), s(T0, 1)]) == 1


def test_two_different_barcodes_in_one_frame_count_twice():
    assert counted([s(T0, 1, "ABC"), s(T0, 1, "XYZ")]) == 2
    assert counted([s(T0, 1, "ABC", "QR_CODE"), s(T0, 1, "ABC", "EAN_13")]) == 2  # format is part of identity


def test_identical_barcodes_on_consecutive_frames_count_once():
    assert counted([s(T0 + 33 * i, i) for i in range(30)]) == 1


def test_a_barcode_held_for_a_minute_counts_once_and_again_after_a_gap():
    held = [s(T0 + 33 * i, i) for i in range(1800)]  # 30 frames a second for a minute
    last = held[-1].ts_ms
    again = [s(last + 4000, 5000)]  # shown again after a 4 s gap
    assert counted(held) == 1
    assert counted(held + again) == 2


def test_it_counts_only_strictly_after_the_interval():
    assert counted([s(T0, 1), s(T0 + 3000, 2)]) == 1  # exactly the interval: not after it
    assert counted([s(T0, 1), s(T0 + 3001, 2)]) == 2


def test_last_moves_on_every_sighting_counted_or_not():
    # Seen every 2 s: never 3 s apart from the previous sighting, so it counts once.
    assert counted([s(T0 + 2000 * i, i) for i in range(10)]) == 1


def test_sightings_are_taken_in_time_and_frame_order():
    shuffled = [s(T0 + 4000, 3), s(T0, 1), s(T0 + 1000, 2)]
    assert counted(shuffled) == 1  # T0 counts; T0+1000 refreshes last; T0+4000 is only 3000 after it


def test_the_interval_comes_from_the_caller():
    pair = [s(T0, 1), s(T0 + 1500, 2)]
    assert counted(pair, interval_ms=3000) == 1
    assert counted(pair, interval_ms=1000) == 2


# --- through the API: memory across reports, interval from the item ----------------------------


def sightings_body(*sightings: Sighting) -> list[dict]:
    return [{"ts_ms": x.ts_ms, "frame": x.frame, "format": x.format, "text": x.text} for x in sightings]


@pytest.mark.django_db
def test_the_dedup_memory_lives_across_reports(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, dedup_interval_ms=3000)
    authorize(client, item.project)
    first = report(client, item.project, report_id="1", sightings=sightings_body(s(T0, 1), s(T0, 1), s(T0, 1, "Z")))
    assert first.json()["counted"]["barcode_scans"] == 2
    # The next report continues the same hold: the barcode was last seen 2 s before.
    second = report(client, item.project, report_id="2", slot=SLOT, sightings=sightings_body(s(T0 + 2000, 60)))
    assert second.json()["counted"]["barcode_scans"] == 0
    third = report(client, item.project, report_id="3", sightings=sightings_body(s(T0 + 5001, 150)))
    assert third.json()["counted"]["barcode_scans"] == 1
    assert SightingMemory.objects.filter(device__device_uuid="dev-1").count() == 2


@pytest.mark.django_db
def test_the_interval_is_the_items(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True, dedup_interval_ms=500)
    authorize(client, item.project)
    body = report(client, item.project, sightings=sightings_body(s(T0, 1), s(T0 + 600, 20))).json()
    assert body["counted"]["barcode_scans"] == 2


@pytest.mark.django_db
def test_the_stored_memory_is_the_rules_last_whatever_the_order_of_reports(client):
    """What the server stores (usage.hot_sql.remember_sightings merges each key's latest time in
    a report with the stored one) is what the rule's ``last`` says after the same reports, an
    out-of-order one included; and the counts are the rule's, report by report."""
    item = factories.LicenseItemFactory(per_barcode_scan=True, dedup_interval_ms=3000)
    authorize(client, item.project)
    reports = [
        [s(T0, 1), s(T0 + 100, 4), s(T0, 1, "Z")],
        [s(T0 + 9000, 300, "Z"), s(T0 + 2000, 60)],
        [s(T0 + 500, 20), s(T0 + 400, 15, "Y")],  # arrives late: older than what is stored for ABC
        [s(T0 + 20_000, 600), s(T0 + 20_000, 600, "Y"), s(T0 + 20_001, 601)],
    ]
    memory: dict[str, int] = {}  # the rule's memory: every key's last, across the reports
    for i, sightings in enumerate(reports):
        expected, last = count_sightings(sightings, interval_ms=3000, memory=memory)
        memory = {**memory, **last}
        answer = report(client, item.project, report_id=f"o{i}", sightings=sightings_body(*sightings)).json()
        assert answer["counted"]["barcode_scans"] == expected, (i, answer)
        assert memory_rows() == memory, i


def memory_rows() -> dict[str, int]:
    return dict(SightingMemory.objects.filter(device__device_uuid="dev-1").values_list("key", "last_ts_ms"))


@pytest.mark.django_db
def test_a_duplicate_report_does_not_touch_the_memory(client):
    item = factories.LicenseItemFactory(per_barcode_scan=True)
    authorize(client, item.project)
    body = sightings_body(s(T0, 1))
    assert report(client, item.project, report_id="1", sightings=body).json()["counted"]["barcode_scans"] == 1
    replay = report(client, item.project, report_id="1", sightings=body).json()
    assert replay["status"] == "duplicate" and replay["counted"]["barcode_scans"] == 1
    assert SightingMemory.objects.get().last_ts_ms == T0
