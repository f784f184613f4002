"""The right quantity of a seat, server or concurrent item (docs/insight.md): from the what-if
replay (``usage.replay``), the smallest quantity that would have refused nothing in a window, and
the smallest that would have refused under 1 % of its requests, with the overuse budget (or the
seat grace) each would have spent.

A replay per quantity tried, by bisection between 1 and the number of distinct devices the
window saw (a ceiling that high refuses no one): about log2(devices) replays, each streamed.
Refusals are those the replay counts (``Result.refused``); the share is of authorizations for
seat and server items and of usage reports for concurrent items, whose authorizations are never
refused (slots decide at usage).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from devices.models import Decision, Device
from licenses import rules
from licenses.models import LicenseItem
from usage.models import UsageReport
from usage.replay import Replay, Result

OPTIONS = (rules.PER_CLIENT_DEVICE, rules.PER_SERVER, rules.PER_CONCURRENT_DEVICE)
SHARE = 0.01  # "refused under 1 %"


def _replay(item: LicenseItem, quantity: int, start: datetime, end: datetime) -> Result:
    return Replay(item, start=start, end=end, changes={"quantity": quantity}).run()


def share_refused(item: LicenseItem, result: Result) -> float:
    if item.option == rules.PER_CONCURRENT_DEVICE:
        base = result.requests - result.authorizations
    else:
        base = result.authorizations
    return result.refused / base if base else 0.0


def devices_seen(item: LicenseItem, start: datetime, end: datetime) -> int:
    decided = Decision.objects.filter(Q(item_id=item.pk) & Q(created_at__gte=start, created_at__lt=end)).values(
        "device_uuid"
    )
    reported = UsageReport.objects.filter(item_id=item.pk, received_at__gte=start, received_at__lt=end).values(
        "device_id"
    )
    return max(decided.distinct().count(), reported.distinct().count())


def _smallest(item: LicenseItem, start: datetime, end: datetime, ok, hi: int) -> tuple[int, Result]:
    """The smallest quantity in [1, hi] whose replay satisfies ``ok`` (monotone in quantity)."""
    best = _replay(item, hi, start, end)
    lo, best_q = 1, hi
    while lo < best_q:
        mid = (lo + best_q) // 2
        result = _replay(item, mid, start, end)
        if ok(result):
            best_q, best = mid, result
        else:
            lo = mid + 1
    return best_q, best


def _spent(item: LicenseItem, quantity: int, result: Result) -> dict[str, Any]:
    if item.option == rules.PER_CONCURRENT_DEVICE:
        return {"overuse_spent": result.overuse_spent, "overuse_budget": result.policy.effective_overuse_budget}
    return {"grace_seats_used": max(0, result.peak_seats - quantity), "peak_seats": result.peak_seats}


def right_quantity(item: LicenseItem, *, start: datetime, end: datetime) -> dict[str, Any] | None:
    """``{"none_refused": {...}, "under_1_percent": {...}, "current": {...}}`` or None for an
    option without a quantity of devices."""
    if item.option not in OPTIONS:
        return None
    # A ceiling above every device the window saw and the item holds refuses no one.
    hi = max(1, devices_seen(item, start, end) + Device.objects.filter(item_id=item.pk).count())
    quantity = item.quantity or 1  # the options here always have one
    current = _replay(item, quantity, start, end)
    zero_q, zero = _smallest(item, start, end, lambda r: r.refused == 0, hi)
    one_q, one = _smallest(item, start, end, lambda r: share_refused(item, r) < SHARE, zero_q)

    def figure(quantity: int, result: Result) -> dict[str, Any]:
        return {
            "quantity": quantity,
            "refused": result.refused,
            "share_refused": round(share_refused(item, result), 4),
            **_spent(item, quantity, result),
        }

    return {
        "item": item.item_id,
        "option": item.option,
        "current": figure(quantity, current),
        "none_refused": figure(zero_q, zero),
        "under_1_percent": figure(one_q, one),
    }
