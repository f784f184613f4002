"""The statistics page's devices by usage at fleet scale (usage.top_devices, docs/benchmarks.md
"Pages and exports"): the rollup job keeps each project's default period, the page shows it "as
of" that run, any other period is summed live; both equal the plain GROUP BY over the raw
counts, on random data."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.models import Q, Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.models import Device
from tests import factories
from tests.factories import MODEL_BACKEND, world
from usage import jobs, top_devices
from usage.models import DeviceUsageTop, UsageCount

pytestmark = pytest.mark.django_db
NOW = factories.NOW
ROWS = 6  # fewer than the devices, so the cut and its ties matter


@pytest.fixture
def w(monkeypatch):
    monkeypatch.setattr(top_devices, "DEVICE_ROWS", ROWS)
    monkeypatch.setattr("portal.views.statistics.DEVICE_ROWS", ROWS)
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def plain_group_by(project, start: date, end: date) -> list[tuple]:
    """The definition written plainly: the raw counts of the project's devices whose slot falls
    on the UTC days start..end, summed per device, most first, ties by device id."""
    scan = Q(metric="barcode_scans")
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    rows = (
        UsageCount.objects.filter(
            report__device__project=project,
            slot_start__gte=first,
            slot_start__lt=first + timedelta(days=(end - start).days + 1),
        )
        .values("report__device_id")
        .annotate(total=Sum("count"), scans=Sum("count", filter=scan), pages=Sum("count", filter=~scan))
        .order_by("-total", "report__device_id")[:ROWS]
    )
    return [(r["report__device_id"], r["total"], r["scans"] or 0, r["pages"] or 0) for r in rows]


def random_usage(w, rng: random.Random, *, reports: int = 60) -> None:
    """Devices on the scan, page and seat items (and one of another project) reporting random
    metrics on random days around the default period's edges, with many ties."""
    items = [w.scan, w.pages, w.seats]
    devices = [factories.DeviceFactory(item=rng.choice(items), now=NOW) for _ in range(10)]
    outsider = factories.DeviceFactory(item=w.other_device.item, now=NOW)
    for k in range(reports):
        device = rng.choice([*devices, outsider])
        metrics = ["barcode_scans"] if device.item == w.scan else ["pages_core", "pages_ocr", "barcode_scans"]
        days_ago = rng.choice([0, 0, 1, 2, 15, 28, 29, 30, 31, 45])
        slot = factories.day_start(NOW, days_ago) + timedelta(seconds=180 * rng.randrange(480))
        slot = min(slot, NOW - timedelta(minutes=3))
        counted = {m: rng.choice([1, 2, 3, 100]) for m in rng.sample(metrics, rng.randint(1, len(metrics)))}
        factories.UsageReportFactory(
            device=device,
            report_id=f"rand-{k}",
            slot_start=slot,
            received_at=NOW - timedelta(minutes=1),
            counted=counted,
        )


def page(client, w, query: str = "", *, at: datetime = NOW):
    with time_machine.travel(at, tick=False):
        client.force_login(w.viewer, backend=MODEL_BACKEND)
        response = client.get(reverse("portal:statistics", args=[w.project.pk]) + query)
    assert response.status_code == 200
    return response


def shown(response) -> list[tuple]:
    return [(r["report__device_id"], r["total"], r["scans"], r["pages"]) for r in response.context["device_rows"]]


@pytest.mark.parametrize("seed", range(5))
def test_the_snapshot_and_the_live_sum_both_equal_the_plain_group_by(client, w, seed):
    rng = random.Random(seed)
    random_usage(w, rng)
    start, end = top_devices.default_period(NOW)
    assert (start, end) == (NOW.date() - timedelta(days=29), NOW.date())
    jobs.rollup_usage(now=NOW)

    default = page(client, w)
    assert default.context["devices_as_of"] == NOW and "as of" in default.content.decode()
    assert shown(default) == plain_group_by(w.project, start, end)
    assert len(shown(default)) == ROWS
    for first, last in ((start + timedelta(days=1), end), (start - timedelta(days=2), end - timedelta(days=1))):
        live = page(client, w, f"?start={first}&end={last}")
        assert live.context["devices_as_of"] is None and ", live." in live.content.decode()
        assert shown(live) == plain_group_by(w.project, first, last)
    row = default.context["device_rows"][0]
    device = Device.objects.get(pk=row["report__device_id"])
    assert (row["report__device__device_uuid"], row["report__device__client_type"]) == (
        device.device_uuid,
        device.client_type,
    )


def test_the_snapshot_is_exact_as_of_the_job_and_moves_with_it(client, w):
    random_usage(w, random.Random(7), reports=30)
    jobs.rollup_usage(now=NOW)
    before = plain_group_by(w.project, *top_devices.default_period(NOW))
    # A report after the run: the page keeps the run's answer and says when it was exact.
    busy = factories.DeviceFactory(item=w.scan, now=NOW)
    factories.UsageReportFactory(
        device=busy, slot_start=NOW - timedelta(minutes=3), received_at=NOW, counted={"barcode_scans": 10**6}
    )
    later = NOW + timedelta(minutes=4)
    stale = page(client, w, at=later)
    assert shown(stale) == before and stale.context["devices_as_of"] == NOW
    # The next run sees the report's project and recomputes it.
    with time_machine.travel(later, tick=False):
        summary = jobs.rollup_usage(now=later)
    assert summary["top_devices_projects"] >= 1  # and the outsider's, received within the margin
    fresh = page(client, w, at=later)
    assert fresh.context["devices_as_of"] == later
    assert shown(fresh)[0] == (busy.pk, 10**6, 10**6, 0)
    assert shown(fresh) == plain_group_by(w.project, *top_devices.default_period(later))
    # Once no report is received within the window (and its late-commit margin) of a run of
    # the same day, the run recomputes nothing.
    quiet = later + jobs.LATE_COMMIT_MARGIN
    with time_machine.travel(quiet, tick=False):
        jobs.rollup_usage(now=quiet)
        assert jobs.rollup_usage(now=quiet + timedelta(minutes=10))["top_devices_projects"] == 0


def test_a_new_day_reads_live_until_the_job_has_run_for_it(client, w):
    random_usage(w, random.Random(3))
    jobs.rollup_usage(now=NOW)
    tomorrow = NOW + timedelta(days=1)
    period = top_devices.default_period(tomorrow)
    assert period != top_devices.default_period(NOW)
    live = page(client, w, at=tomorrow)
    assert live.context["devices_as_of"] is None
    assert shown(live) == plain_group_by(w.project, *period)
    with time_machine.travel(tomorrow, tick=False):
        # No report arrived, but the snapshot is of yesterday's period: refreshed.
        assert jobs.rollup_usage(now=tomorrow)["top_devices_projects"] >= 1
    snap = page(client, w, at=tomorrow)
    assert snap.context["devices_as_of"] == tomorrow and shown(snap) == shown(live)


def test_a_snapshot_naming_a_deleted_device_gives_way_to_the_live_sum(client, w):
    random_usage(w, random.Random(11))
    jobs.rollup_usage(now=NOW)
    first = shown(page(client, w))[0][0]
    Device.objects.filter(pk=first).delete()
    response = page(client, w)
    assert response.context["devices_as_of"] is None
    assert shown(response) == plain_group_by(w.project, *top_devices.default_period(NOW))
    assert first not in [r[0] for r in shown(response)]


def test_the_default_page_reads_no_device_day_and_a_live_period_one_statement(client, w):
    random_usage(w, random.Random(5), reports=20)
    jobs.rollup_usage(now=NOW)
    assert DeviceUsageTop.objects.filter(project=w.project).exists()
    table = "usage_deviceusageday"
    url = reverse("portal:statistics", args=[w.project.pk])
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    start, end = top_devices.default_period(NOW)
    with time_machine.travel(NOW, tick=False):
        client.get(url)  # session and caches warm
        with CaptureQueriesContext(connection) as snapshot:
            assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as live:
            assert client.get(url + f"?start={start + timedelta(days=1)}&end={end}").status_code == 200
    assert [q for q in snapshot.captured_queries if table in q["sql"]] == []
    assert len([q for q in live.captured_queries if table in q["sql"]]) == 1
    assert len(live.captured_queries) == len(snapshot.captured_queries) + 1
    # One read of the devices shown, whatever their number.
    device_reads = [q for q in snapshot.captured_queries if 'FROM "devices_device"' in q["sql"]]
    assert len(device_reads) == 1


def test_a_project_without_usage_in_the_period_keeps_an_empty_snapshot(client, w):
    jobs.rollup_usage(now=NOW)
    old = factories.DeviceFactory(item=w.other_device.item, now=NOW)
    factories.UsageReportFactory(
        device=old, slot_start=factories.day_start(NOW, 40), received_at=NOW, counted={"barcode_scans": 9}
    )
    later = NOW + timedelta(minutes=10)
    with time_machine.travel(later, tick=False):
        assert jobs.rollup_usage(now=later)["top_devices_projects"] == 1
        assert DeviceUsageTop.objects.get(project=w.other_project).rows == []
        # Kept, so the next run of the same day does not sum it again.
        assert jobs.rollup_usage(now=later + timedelta(minutes=10))["top_devices_projects"] == 0
        client.force_login(w.outsider, backend=MODEL_BACKEND)
        response = client.get(reverse("portal:statistics", args=[w.other_project.pk]))
    assert response.context["devices_as_of"] == later and response.context["device_rows"] == []
    assert "No device used anything in this period." in response.content.decode()
