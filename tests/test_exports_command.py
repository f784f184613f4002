import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests import factories
from usage import jobs

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 27, tzinfo=UTC)


def export(*args):
    out = StringIO()
    call_command("export_usage", *args, stdout=out)
    return out.getvalue()


def test_it_writes_the_usage_csv_between_dates():
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    d = factories.DeviceFactory(item=item)
    factories.UsageReportFactory(device=d, slot_start=DAY - timedelta(minutes=3), counted={"barcode_scans": 1})
    factories.UsageReportFactory(device=d, slot_start=DAY, counted={"barcode_scans": 2})
    factories.UsageReportFactory(device=d, slot_start=DAY + timedelta(days=1), counted={"barcode_scans": 3})
    jobs.rollup_usage(now=DAY + timedelta(days=2))

    text = export(
        "--license-key", item.project.license_key, "--what", "usage", "--from", "2026-11-27", "--to", "2026-11-28"
    )
    assert text == f"bucket_start,item,metric,count\n2026-11-27T00:00:00Z,{item.pk},barcode_scans,2\n"
    text = export("--license-key", item.project.license_key, "--what", "usage", "--from", "2026-11-27T00:00:01Z")
    assert text == f"bucket_start,item,metric,count\n2026-11-28T00:00:00Z,{item.pk},barcode_scans,3\n"


def test_headers_alone_when_there_is_nothing():
    project = factories.ProjectFactory()
    assert export("--license-key", project.license_key, "--what", "concurrency") == (
        "slot_start,item,active_devices,limit,overuse_devices\n"
    )


@pytest.mark.parametrize(
    "args, option",
    [
        (["--license-key", "nope", "--what", "usage"], "--license-key"),
        (["--what", "usage", "--from", "27/11/2026"], "--from"),
        (["--what", "usage", "--to", "2026-13-01"], "--to"),
        (["--what", "usage", "--from", "2026-11-28", "--to", "2026-11-27"], "--to"),
    ],
)
def test_bad_arguments_name_the_option(args, option):
    project = factories.ProjectFactory()
    if "--license-key" not in args:
        args = ["--license-key", project.license_key, *args]
    with pytest.raises(CommandError, match=option):
        export(*args)


def test_a_bad_what_exits_non_zero_naming_it():
    result = subprocess.run(
        [sys.executable, "manage.py", "export_usage", "--license-key", "k", "--what", "bogus"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "--what" in result.stderr
