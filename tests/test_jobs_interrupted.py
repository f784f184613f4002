"""A run that dies half way (worker killed, database error) leaves nothing that the next run
does not finish."""

from datetime import timedelta

import pytest

from licenses.clock import slot_start_of
from tests import factories
from usage import jobs
from usage.models import ConcurrencyRollup, JobState, UsageReport, UsageRollup

pytestmark = pytest.mark.django_db


class Killed(Exception):
    pass


def test_a_rollup_killed_before_it_commits_leaves_nothing_and_the_next_run_does_it_all(now, monkeypatch):
    item = factories.LicenseItemFactory(per_concurrent_device=True, quantity=5)
    scans = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    s = slot_start_of(now) - timedelta(minutes=30)
    jobs.rollup_concurrency(now=s)
    jobs.rollup_usage(now=s)
    factories.UsageReportFactory(device=factories.DeviceFactory(item=item), slot_start=s, counted={"barcode_scans": 1})
    factories.UsageReportFactory(device=factories.DeviceFactory(item=scans), slot_start=s, counted={"barcode_scans": 4})
    watermarks = dict(JobState.objects.values_list("name", "watermark"))

    # Die right after the first rollup statement ran, before the watermark moved.
    real_execute = jobs._execute

    def execute_then_die(sql, params=()):
        real_execute(sql, params)
        raise Killed()

    monkeypatch.setattr(jobs, "_execute", execute_then_die)
    for job in (jobs.rollup_concurrency, jobs.rollup_usage):
        with pytest.raises(Killed):
            job(now=now)
    assert ConcurrencyRollup.objects.count() == 0 and UsageRollup.objects.count() == 0
    assert dict(JobState.objects.values_list("name", "watermark")) == watermarks
    monkeypatch.undo()

    jobs.rollup_concurrency(now=now + timedelta(minutes=3))
    jobs.rollup_usage(now=now + timedelta(minutes=10))
    assert list(ConcurrencyRollup.objects.values_list("active_devices", flat=True)) == [1]
    assert UsageRollup.objects.get(item=scans, granularity="2h").count == 4


def test_a_purge_killed_between_batches_keeps_what_it_did_and_the_next_run_finishes(now, monkeypatch):
    item = factories.LicenseItemFactory(per_barcode_scan=True, quantity=100)
    dev = factories.DeviceFactory(item=item)
    old = now - timedelta(days=500)
    for i in range(6):
        factories.UsageReportFactory(
            device=dev,
            slot_start=slot_start_of(old),
            received_at=old + timedelta(seconds=i),
            counted={"barcode_scans": 1},
        )
    keep = factories.UsageReportFactory(
        device=dev, slot_start=slot_start_of(now), received_at=now, counted={"barcode_scans": 1}
    )

    real_execute, calls = jobs._execute, []

    def dying_execute(sql, params=()):
        calls.append(sql)
        if len(calls) == 3:  # the first batch (counts, then reports) is done; die in the second
            raise Killed()
        return real_execute(sql, params)

    monkeypatch.setattr(jobs, "_execute", dying_execute)
    with pytest.raises(Killed):
        jobs.purge_old_data(now=now, batch=3)
    assert UsageReport.objects.count() == 4  # 3 purged, 3 old left, 1 kept
    monkeypatch.undo()

    assert jobs.purge_old_data(now=now, batch=3)["usagereport"] == 3
    assert list(UsageReport.objects.values_list("pk", flat=True)) == [keep.pk]
