import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devices.models import Device
from tests import factories
from usage.jobs import JOBS

pytestmark = pytest.mark.django_db


def run_job(*args):
    out = StringIO()
    call_command("run_job", *args, stdout=out)
    return out.getvalue()


def test_it_runs_a_job_as_at_now_and_prints_one_line_of_json(now):
    item = factories.LicenseItemFactory()
    device = factories.DeviceFactory(item=item, active_until=now + timedelta(hours=1))

    assert json.loads(run_job("expire_idle_devices", "--now", "2026-11-27T17:24:00Z")) == {
        "job": "expire_idle_devices",
        "expired": 0,
        "tally_rows_folded": 0,  # the device's one row: nothing to fold
    }
    # A replay in the future: its changes persist.
    out = run_job("expire_idle_devices", "--now", "2026-11-27T18:24:00+00:00")
    assert out.endswith("}\n") and out.count("\n") == 1 and json.loads(out)["expired"] == 1
    device.refresh_from_db()
    assert device.state == Device.EXPIRED


@pytest.mark.parametrize("name", list(JOBS))
def test_every_job_runs_and_summarises(name, now):
    summary = json.loads(run_job(name, "--now", now.isoformat()))
    assert summary["job"] == name


def test_a_bad_now_names_the_option():
    with pytest.raises(CommandError, match="--now"):
        run_job("rollup_usage", "--now", "yesterday")
    with pytest.raises(CommandError, match="--now.*offset"):
        run_job("rollup_usage", "--now", "2026-11-27T17:24:00")


def test_an_unknown_name_exits_non_zero_listing_the_names():
    result = subprocess.run(
        [sys.executable, "manage.py", "run_job", "expire_everything"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "unknown job 'expire_everything'" in result.stderr
    for name in JOBS:
        assert name in result.stderr
