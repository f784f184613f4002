from datetime import UTC, datetime, timedelta

import pytest

from tests import factories
from usage import jobs
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 27, tzinfo=UTC)


def rolled(item, granularity):
    return list(
        UsageRollup.objects.filter(item=item, granularity=granularity)
        .order_by("bucket_start", "metric")
        .values_list("bucket_start", "metric", "count")
    )


def test_it_sums_counts_per_item_metric_two_hour_bucket_and_day():
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    pages = factories.LicenseItemFactory(per_page=True, product="dwt", quantities={"core": 100, "ocr": 10})
    d1, d2, d3 = (
        factories.DeviceFactory(item=scans),
        factories.DeviceFactory(item=scans),
        factories.DeviceFactory(item=pages),
    )
    factories.UsageReportFactory(
        device=d1, slot_start=DAY + timedelta(hours=1, minutes=57), counted={"barcode_scans": 4}
    )  # last slot of 00-02
    factories.UsageReportFactory(
        device=d2, slot_start=DAY + timedelta(hours=1, minutes=3), counted={"barcode_scans": 6}
    )
    factories.UsageReportFactory(
        device=d1, slot_start=DAY + timedelta(hours=2), counted={"barcode_scans": 1}
    )  # first slot of 02-04
    factories.UsageReportFactory(
        device=d3, slot_start=DAY + timedelta(hours=23, minutes=57), counted={"pages_core": 3, "pages_ocr": 1}
    )
    factories.UsageReportFactory(
        device=d3, slot_start=DAY + timedelta(days=1), counted={"pages_core": 5}
    )  # the next day

    summary = jobs.rollup_usage(now=DAY + timedelta(days=1, minutes=10))

    assert rolled(scans, "2h") == [
        (DAY, "barcode_scans", 10),
        (DAY + timedelta(hours=2), "barcode_scans", 1),
    ]
    assert rolled(scans, "day") == [(DAY, "barcode_scans", 11)]
    assert rolled(pages, "2h") == [
        (DAY + timedelta(hours=22), "pages_core", 3),
        (DAY + timedelta(hours=22), "pages_ocr", 1),
        (DAY + timedelta(days=1), "pages_core", 5),
    ]
    assert rolled(pages, "day") == [
        (DAY, "pages_core", 3),
        (DAY, "pages_ocr", 1),
        (DAY + timedelta(days=1), "pages_core", 5),
    ]
    assert summary["buckets_rolled"] == 5 and summary["days_rolled"] == 4


def test_a_late_report_re_rolls_its_bucket_and_day_and_nothing_else():
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    d = factories.DeviceFactory(item=item)
    factories.UsageReportFactory(device=d, slot_start=DAY + timedelta(hours=4), counted={"barcode_scans": 2})
    factories.UsageReportFactory(device=d, slot_start=DAY + timedelta(hours=9), counted={"barcode_scans": 7})
    jobs.rollup_usage(now=DAY + timedelta(hours=10))

    # Three days later a device that was offline uploads a report for the 04:00 slot.
    later = DAY + timedelta(days=3)
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=DAY + timedelta(hours=4, minutes=3),
        received_at=later,
        counted={"barcode_scans": 5},
    )
    summary = jobs.rollup_usage(now=later + timedelta(minutes=10))

    assert summary["buckets_rolled"] == 1 and summary["days_rolled"] == 1
    assert rolled(item, "2h") == [
        (DAY + timedelta(hours=4), "barcode_scans", 7),
        (DAY + timedelta(hours=8), "barcode_scans", 7),
    ]
    assert rolled(item, "day") == [(DAY, "barcode_scans", 14)]


def test_the_current_bucket_is_rolled_and_grows_with_later_reports():
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    d = factories.DeviceFactory(item=item)
    factories.UsageReportFactory(device=d, slot_start=DAY, counted={"barcode_scans": 1})
    jobs.rollup_usage(now=DAY + timedelta(minutes=10))
    factories.UsageReportFactory(device=d, slot_start=DAY + timedelta(minutes=30), counted={"barcode_scans": 2})
    jobs.rollup_usage(now=DAY + timedelta(minutes=40))

    assert rolled(item, "2h") == [(DAY, "barcode_scans", 3)]
    assert rolled(item, "day") == [(DAY, "barcode_scans", 3)]


def test_running_twice_gives_the_same_rollups():
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item), slot_start=DAY, counted={"barcode_scans": 9}
    )
    jobs.rollup_usage(now=DAY + timedelta(minutes=10))
    first = rolled(item, "2h") + rolled(item, "day")
    jobs.rollup_usage(now=DAY + timedelta(minutes=10))
    jobs.rollup_usage(now=DAY + timedelta(minutes=20))
    assert rolled(item, "2h") + rolled(item, "day") == first == [(DAY, "barcode_scans", 9), (DAY, "barcode_scans", 9)]


def test_reports_received_after_now_wait_for_a_later_run():
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    jobs.rollup_usage(now=DAY)  # not the first run: that one rolls everything there is
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=item),
        slot_start=DAY,
        received_at=DAY + timedelta(minutes=5),
        counted={"barcode_scans": 9},
    )
    jobs.rollup_usage(now=DAY + timedelta(minutes=4))
    assert rolled(item, "2h") == []
    jobs.rollup_usage(now=DAY + timedelta(minutes=14))
    assert rolled(item, "2h") == [(DAY, "barcode_scans", 9)]


def test_the_first_run_rolls_the_whole_history():
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    d = factories.DeviceFactory(item=item)
    factories.UsageReportFactory(device=d, slot_start=DAY - timedelta(days=200), counted={"barcode_scans": 3})
    factories.UsageReportFactory(device=d, slot_start=DAY, counted={"barcode_scans": 4})
    summary = jobs.rollup_usage(now=DAY + timedelta(hours=1))
    assert summary["since"] == "1970-01-01T00:00:00Z"
    assert rolled(item, "day") == [(DAY - timedelta(days=200), "barcode_scans", 3), (DAY, "barcode_scans", 4)]


def test_a_replay_in_the_future_does_not_make_later_runs_skip_reports():
    """run_job rollup_usage --now <tomorrow> persists (SPEC 8) but must not move the window past
    reports that arrive afterwards with an earlier receipt time: 673 + 777 scans, not 673."""
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=10**6)
    d = factories.DeviceFactory(item=item)
    now = DAY + timedelta(hours=10)
    factories.UsageReportFactory(
        device=d,
        slot_start=DAY + timedelta(hours=4),
        received_at=now - timedelta(hours=5),
        counted={"barcode_scans": 673},
    )
    jobs.rollup_usage(now=now)
    jobs.rollup_usage(now=now + timedelta(days=1))  # the replay
    factories.UsageReportFactory(
        device=d,
        slot_start=DAY + timedelta(hours=9, minutes=30),
        received_at=now + timedelta(minutes=1),
        counted={"barcode_scans": 777},
    )
    for k in (1, 2, 3):  # the regular runs, every 10 minutes
        jobs.rollup_usage(now=now + timedelta(minutes=10 * k))
    assert rolled(item, "day") == [(DAY, "barcode_scans", 1450)]
