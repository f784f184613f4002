"""Devices by usage in a period: the statistics page's "devices in the period" table (one home).

The definition: a project's devices ordered by what they counted (every metric of the project's
items) on the UTC days ``start`` to ``end`` inclusive, most first, ties by device id; the first
``DEVICE_ROWS`` of them, each with its barcode scans, its pages (every other metric) and its
total. It reads ``DeviceUsageDay`` (kept by the report's own insert, ``usage.hot_sql``), so it is
exact the moment a report commits.

At fleet scale that sum is one pass over the period's device-days (1,000,000 rows for 100,000
devices: 0.5-1 s of PostgreSQL, docs/benchmarks.md "Pages and exports"), so the rollup job
(``usage.jobs.rollup_usage``) keeps the answer for each project's default period
(``default_period``) in ``DeviceUsageTop``, recomputed with this same function in every run that
saw the project's reports or a new day; the page shows it "as of" that run, and asks this
function live for any other period, or when the snapshot is not of the period asked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db.models import Q, Sum

from devices.models import Device
from licenses.models import LicenseItem
from usage.models import DeviceUsageDay, DeviceUsageTop, UsageRollup

DEVICE_ROWS = 50
DEFAULT_PERIOD_DAYS = 30  # the statistics page's default period: the last 30 UTC days, today included


def default_period(now: datetime) -> tuple[date, date]:
    """The statistics page's default period at ``now``: (first day, last day), UTC, inclusive."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=DEFAULT_PERIOD_DAYS - 1), today


def top_devices(item_ids: Iterable[int], start: date, end: date) -> list[dict]:
    """The live definition: the first ``DEVICE_ROWS`` ``{"device_id", "total", "scans",
    "pages"}``, most first.

    Summed per device on ``DeviceUsageDay`` alone, by the items' ids (so PostgreSQL estimates the
    rows right); joining the devices before grouping looked each device-day's device up."""
    scan = Q(metric="barcode_scans")
    rows = (
        DeviceUsageDay.objects.filter(item_id__in=list(item_ids), day__gte=start, day__lte=end)
        .values("device_id")
        .annotate(total=Sum("count"), scans=Sum("count", filter=scan), pages=Sum("count", filter=~scan))
        .order_by("-total", "device_id")[:DEVICE_ROWS]
    )
    return [
        {"device_id": r["device_id"], "total": r["total"], "scans": r["scans"] or 0, "pages": r["pages"] or 0}
        for r in rows
    ]


def refresh_top_devices(project_ids: Iterable[int], *, now: datetime) -> int:
    """Recompute the default period's top devices of each project with the live definition, as
    of ``now`` (the rollup job's run); an empty answer is kept too (so the job does not redo it
    every run). Returns the number of projects written."""
    start, end = default_period(now)
    project_ids = sorted(set(project_ids))
    items: dict[int, list[int]] = {p: [] for p in project_ids}
    for item_id, project_id in LicenseItem.objects.filter(project_id__in=project_ids).values_list("id", "project_id"):
        items[project_id].append(item_id)
    for project_id in project_ids:
        rows = top_devices(items[project_id], start, end) if items[project_id] else []
        DeviceUsageTop.objects.update_or_create(
            project_id=project_id,
            defaults={
                "start": start,
                "end": end,
                "limit": DEVICE_ROWS,
                "as_of": now,
                "rows": [[r["device_id"], r["total"], r["scans"], r["pages"]] for r in rows],
            },
        )
    return len(project_ids)


def stale_projects(*, now: datetime) -> set[int]:
    """Projects to refresh even if none of their reports arrived since the job's last run: a
    snapshot of another period (a new UTC day began) or limit, and projects with usage rolled up
    in the default period but no snapshot yet (the first run, a project's first day)."""
    start, end = default_period(now)
    snapshots = set(DeviceUsageTop.objects.values_list("project_id", flat=True))
    stale = set(
        DeviceUsageTop.objects.exclude(start=start, end=end, limit=DEVICE_ROWS).values_list("project_id", flat=True)
    )
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    used = (
        UsageRollup.objects.filter(
            granularity=UsageRollup.DAY,
            bucket_start__gte=first,
            bucket_start__lt=first + timedelta(days=DEFAULT_PERIOD_DAYS),
        )
        .values_list("item__project_id", flat=True)
        .distinct()
    )
    return stale | {p for p in used if p not in snapshots}


DEVICE_FIELDS = ("device_uuid", "device_name", "client_type", "origin")


def devices_by_usage(
    project_id: int, item_ids: Iterable[int], start: date, end: date
) -> tuple[list[dict], datetime | None]:
    """The page's rows for the period, each with its device's ``DEVICE_FIELDS``, and the time
    they are exact as of (None: live). The rollup job's snapshot when it is of exactly this
    period and every device in it still exists; the live definition otherwise. Only the shown
    devices are read for their names."""
    snapshot = DeviceUsageTop.objects.filter(project_id=project_id, start=start, end=end, limit=DEVICE_ROWS).first()
    if snapshot is not None:
        rows = [{"device_id": d, "total": t, "scans": s, "pages": p} for d, t, s, p in snapshot.rows]
        named = _with_names(rows)
        if len(named) == len(rows):
            return named, snapshot.as_of
    return _with_names(top_devices(item_ids, start, end)), None


def _with_names(rows: list[dict]) -> list[dict]:
    """The rows whose device exists, each with its ``DEVICE_FIELDS`` (one query)."""
    shown = Device.objects.filter(pk__in=[r["device_id"] for r in rows]).values("id", *DEVICE_FIELDS)
    names = {d["id"]: d for d in shown}
    return [r | {k: names[r["device_id"]][k] for k in DEVICE_FIELDS} for r in rows if r["device_id"] in names]
