import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests import factories
from usage import jobs
from usage.exports import export_rows, write_csv

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 27, tzinfo=UTC)


def rows(**kw):
    return list(export_rows(**kw))


def test_usage_csv_has_the_spec_header_and_matches_the_two_hour_rollups():
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=1000)
    project = scans.project
    pages = factories.LicenseItemFactory(
        per_page=True, product="dwt", project=project, license=scans.license, quantities={"ocr": 9}
    )
    other = factories.LicenseItemFactory(per_barcode_scan=True, quantity=5)  # another project
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=scans), slot_start=DAY + timedelta(hours=1), counted={"barcode_scans": 4}
    )
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=pages),
        slot_start=DAY + timedelta(hours=1, minutes=30),
        counted={"pages_ocr": 2},
    )
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=scans), slot_start=DAY + timedelta(hours=3), counted={"barcode_scans": 1}
    )
    factories.UsageReportFactory(
        device=factories.DeviceFactory(item=other), slot_start=DAY, counted={"barcode_scans": 1}
    )
    jobs.rollup_usage(now=DAY + timedelta(hours=4))

    assert rows(project=project, what="usage") == [
        ["bucket_start", "item", "metric", "count"],
        ["2026-11-27T00:00:00Z", str(scans.pk), "barcode_scans", "4"],
        ["2026-11-27T00:00:00Z", str(pages.pk), "pages_ocr", "2"],
        ["2026-11-27T02:00:00Z", str(scans.pk), "barcode_scans", "1"],
    ]
    # --from inclusive, --to exclusive.
    assert rows(project=project, what="usage", start=DAY + timedelta(hours=2), end=DAY + timedelta(hours=4))[1:] == [
        ["2026-11-27T02:00:00Z", str(scans.pk), "barcode_scans", "1"],
    ]
    assert (
        rows(project=project, what="usage", end=DAY + timedelta(hours=2))[1:]
        == rows(project=project, what="usage")[1:3]
    )


def test_concurrency_csv_matches_the_rollups_with_limit_as_quantity():
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=2, overuse_percent=50)
    s = DAY + timedelta(hours=5)
    devices = [factories.DeviceFactory(item=item) for _ in range(3)]
    for d in devices:
        factories.UsageReportFactory(device=d, slot_start=s, counted={"barcode_scans": 1})
    item.slot_devices.filter(device=devices[2]).update(overuse=True)
    jobs.rollup_concurrency(now=s + timedelta(minutes=3))

    assert rows(project=item.project, what="concurrency") == [
        ["slot_start", "item", "active_devices", "limit", "overuse_devices"],
        ["2026-11-27T05:00:00Z", str(item.pk), "3", "2", "1"],
    ]
    assert rows(project=item.project, what="concurrency", start=s + timedelta(seconds=1)) == [
        ["slot_start", "item", "active_devices", "limit", "overuse_devices"]
    ]


def test_devices_csv_reads_live_devices_filtered_by_last_seen_at():
    item = factories.LicenseItemFactory(per_client_device=True)
    web = factories.DeviceFactory(
        item=item,
        device_uuid="web-1",
        client_type="web",
        origin="https://app.example.com",
        device_name='Front desk, "left"',
        first_authorized_at=DAY - timedelta(days=3),
        last_seen_at=DAY + timedelta(hours=1, microseconds=500),
        active_until=DAY + timedelta(days=364),
    )
    factories.DeviceFactory(
        item=item, device_uuid="old", last_seen_at=DAY - timedelta(seconds=1), state="expired", active_until=DAY
    )

    out = io.StringIO()
    write_csv(project=item.project, what="devices", start=DAY, out=out)
    text = out.getvalue()

    assert text.splitlines()[0] == (
        "device_uuid,item,client_type,origin,device_name,first_authorized_at,last_seen_at,active_until,state"
    )
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        [
            "web-1",
            str(item.pk),
            "web",
            "https://app.example.com",
            'Front desk, "left"',
            "2026-11-24T00:00:00Z",
            "2026-11-27T01:00:00Z",
            "2027-11-26T00:00:00Z",
            "active",
        ]
    ]
    assert web.device_uuid in text and "old" not in text
    assert not text.startswith("\ufeff") and text.endswith("\n") and "\r" not in text


def test_an_unknown_export_is_refused():
    with pytest.raises(ValueError, match="usage, concurrency, devices"):
        rows(project=factories.ProjectFactory(), what="bogus")
