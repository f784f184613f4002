"""What must still hold after ``bench_api``'s load: no item over its seats, and every report sent
counted once (in the answers, the stored reports and counts, and the item's quota counter), for
the one hot item and for the 100 items of the spread run alike."""

from __future__ import annotations

from django.db.models import Sum
from django.utils import timezone


def _counted_once(devices, items, result: dict) -> tuple[bool, str]:
    from devices import quota
    from usage.models import UsageCount, UsageReport

    reports = UsageReport.objects.filter(device__in=devices).count()
    scans = UsageCount.objects.filter(report__device__in=devices, metric="barcode_scans").aggregate(n=Sum("count"))
    stored = scans["n"] or 0
    # The counters' totals: each counter row with its shares (devices.quota).
    totals = quota.totals(item.pk for item in items)
    counter = sum(n for (_, metric), n in totals.items() if metric == "barcode_scans")
    ok = (
        reports == result["accepted"]
        and stored == result["sent_scans"] == result["counted_scans"] == counter
        and result["errors"] == 0
    )
    return ok, (
        f"{result['accepted']:,} reports accepted, {reports:,} stored; scans sent {result['sent_scans']:,}, "
        f"answered counted {result['counted_scans']:,}, in the database {stored:,}, quota counters {counter:,}; "
        f"{result['duplicates']:,} retries answered duplicate"
    )


def hot_item_usage(load: dict) -> tuple[list[str], dict]:
    """The uuid prefixes of the devices that reported into the hot item and what the load generator
    counted of them: the usage run's, and the run at the issue's concurrency's when there was one
    (``load.run``: ``use-<run>-`` and ``use-<run>w-``), summed."""
    run, usage = load["run"], load["usage"]
    if "wide" not in load:
        return [f"use-{run}-"], usage
    wide = load["wide"]["usage"]
    summed = {k: usage[k] + wide[k] for k in ("accepted", "sent_scans", "counted_scans", "errors", "duplicates")}
    return [f"use-{run}-", f"use-{run}w-"], summed


def check(world: dict, load: dict) -> dict:
    from devices.models import Device
    from devices.verdicts import seat_counts

    now = timezone.now()
    over = []
    for key in ("api_seats", "portal_seats", "load_seats_empty", "hot_seats_full"):
        item = world[key]
        item.refresh_from_db()
        counts = seat_counts(item, now=now)
        if counts["active"] > counts["ceiling"]:
            over.append(f"item {item.pk}: {counts}")
    seats = seat_counts(world["api_seats"], now=now)
    checks = {
        "no item over its seats": (
            not over,
            f"authorize item: {seats['active']} active of ceiling {seats['ceiling']} (quantity {seats['quantity']})"
            + (f"; OVER: {over}" if over else ""),
        )
    }
    run = load["run"]
    prefixes, usage = hot_item_usage(load)
    hot = Device.objects.none()
    for prefix in prefixes:
        hot = hot | Device.objects.filter(project=world["api_project"], device_uuid__startswith=prefix)
    checks["every report into the hot item counted once"] = _counted_once(hot, [world["api_scans"]], usage)
    spread = Device.objects.filter(device_uuid__startswith=f"spread-{run}-")
    checks["every report spread over 100 items counted once"] = _counted_once(
        spread, world["spread_scans"], load["usage_spread"]
    )
    return checks
