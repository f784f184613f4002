"""The rules of SPEC section 4 for one item and one device request: which items serve it, the
term, seats, quotas, concurrency, what remains, until when a device is active. Each returns a
``Verdict`` (no HTTP, no decision written): the device API's services (``devices.services``,
``usage.services``) and the what-if replay (``usage.replay``) call the same functions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from devices import quota
from devices.models import OVERUSE_SPENT, Device
from devices.outcomes import (
    TERM_CODES,
    Verdict,
)
from devices.seats import held_seats, take_seat
from licenses import rules
from licenses.clock import SLOT, rfc3339, slot_start_of
from licenses.domains import domain_matches
from licenses.models import License, LicenseItem

# --- which items serve a request ---------------------------------------------------------------


def serves(item: LicenseItem, *, product: str, edition: str | None, addon: str | None, client_type: str) -> bool:
    """SPEC section 4, "Which items serve a request"."""
    if item.product != product or (item.addon or "") != (addon or ""):
        return False
    if item.edition and item.edition != edition:
        return False
    if item.option == rules.PER_SERVER:
        return client_type == "server"
    if item.option == rules.PER_DOMAIN:
        return client_type == "web"
    if item.option in (rules.PER_CLIENT_DEVICE, rules.PER_CONCURRENT_DEVICE):
        return client_type != "server"
    return True  # scans and pages: every client type


def term_verdict(item: LicenseItem, *, now: datetime) -> Verdict | None:
    """The refusal of an item whose license is not active or not in its term; None if usable."""
    lic: License = item.license
    if lic.usable_at(now):  # the rule's home (SPEC 4, "usable"); below only says which part failed
        return None
    if lic.status != License.ACTIVE:
        return Verdict(item, False, f"license_{lic.status}", f"license {lic.license_id} is {lic.status}", code=113)
    if now < lic.starts_at:
        message = f"license {lic.license_id} starts at {rfc3339(lic.starts_at)}"
        return Verdict(item, False, "license_not_yet_effective", message, code=112)
    message = f"license {lic.license_id} expired at {rfc3339(lic.expires_at)}"
    return Verdict(item, False, "license_expired", message, code=111)


# --- counts and limits -------------------------------------------------------------------------


def active_seats(item: LicenseItem, *, now: datetime) -> int:
    """Devices holding a seat (``Device.objects.holding_seat``), read from the item's seat counter
    in one statement whatever the number of seats (``devices.seats``)."""
    return held_seats(item, now=now)


def quantity_of(item: LicenseItem) -> int:
    """The quantity of a scan, seat, server or concurrent item (never null for those options)."""
    assert item.quantity is not None, f"{item.option} items have a quantity"
    return item.quantity


def seat_counts(item: LicenseItem, *, now: datetime) -> dict[str, int]:
    """{"active", "quantity", "ceiling"} of a client-device or server item."""
    return {"active": active_seats(item, now=now), "quantity": quantity_of(item), "ceiling": item.seat_ceiling}


def counter_values(item: LicenseItem) -> dict[str, int]:
    """The item's counter totals, metric -> used (``devices.quota``: the counter and its shares)."""
    return quota.values(item.pk)


def quota_limits(item: LicenseItem) -> dict[str, int]:
    """Metric -> the smallest total ``quota_verdict`` refuses (``LicenseItem.quota_refused_from``)
    for the counters a report of a scan or page item adds to: what ``devices.quota`` grants
    headroom below."""
    if item.option == rules.PER_BARCODE_SCAN:
        return {"barcode_scans": item.quota_refused_from(quantity_of(item))}
    if item.option == rules.PER_PAGE:
        return {f"pages_{m}": item.quota_refused_from(q) for m, q in page_quotas(item).items()}
    return {}


def page_quotas(item: LicenseItem) -> dict[str, int]:
    return {m: int(n) for m, n in (item.quantities or {}).items()}


def remaining(
    item: LicenseItem, *, now: datetime, counters: dict[str, int] | None = None, seats_held: int | None = None
) -> dict[str, Any]:
    """``remaining`` by option (SPEC section 6); grace is never included. ``counters`` and
    ``seats_held``, when the caller has read them, are not read again."""
    option = item.option
    if option == rules.PER_BARCODE_SCAN:
        used = (counters if counters is not None else counter_values(item)).get("barcode_scans", 0)
        return {"barcode_scans": max(0, quantity_of(item) - used)}
    if option == rules.PER_PAGE:
        counters = counters if counters is not None else counter_values(item)
        return {"pages": {m: max(0, q - counters.get(f"pages_{m}", 0)) for m, q in page_quotas(item).items()}}
    if option in (rules.PER_CLIENT_DEVICE, rules.PER_SERVER):
        held = active_seats(item, now=now) if seats_held is None else seats_held
        return {"seats" if option == rules.PER_CLIENT_DEVICE else "servers": max(0, quantity_of(item) - held)}
    return {}


def remaining_after(item: LicenseItem, verdict: Verdict, *, now: datetime) -> dict[str, Any]:
    """``remaining`` for an allowed authorization, from the counts its verdict already read (the
    seat it took included), without reading them again."""
    counts = verdict.counts
    if item.option in (rules.PER_CLIENT_DEVICE, rules.PER_SERVER) and "active" in counts:
        held = counts["active"] + (1 if verdict.rule.endswith("_taken") else 0)
        return {"seats" if item.option == rules.PER_CLIENT_DEVICE else "servers": max(0, item.quantity - held)}
    if item.option == rules.PER_BARCODE_SCAN and "used" in counts:
        return remaining(item, now=now, counters={"barcode_scans": counts["used"]})
    if item.option == rules.PER_PAGE and isinstance(counts.get("used"), dict):
        return remaining(item, now=now, counters={f"pages_{m}": n for m, n in counts["used"].items()})
    return remaining(item, now=now)


def active_until_for(item: LicenseItem, *, now: datetime) -> datetime:
    """When a device contacting now stops being active (SPEC section 4, by option)."""
    expires_at = item.license.expires_at
    if item.option == rules.PER_CLIENT_DEVICE:
        return min(now + item.period_delta, expires_at)
    if item.option == rules.PER_SERVER:
        return min(now + timedelta(seconds=item.heartbeat_timeout_s), expires_at)
    if item.option == rules.PER_CONCURRENT_DEVICE:
        return min(slot_start_of(now) + 2 * SLOT, expires_at)  # the end of the next slot
    return expires_at


def quota_verdict(item: LicenseItem, counters: dict[str, int], *, modules: set[str] | None = None) -> Verdict:
    """Scan and page quotas with their grace (exact integers). For pages, ``modules`` are those a
    report counts: any of them exhausted refuses; with None (authorization) all must be."""
    grace = item.quota_grace_percent
    if item.option == rules.PER_BARCODE_SCAN:
        used, quantity = counters.get("barcode_scans", 0), quantity_of(item)
        scan_counts = {"used": used, "quantity": quantity, "grace": grace}
        if item.quota_limit_reached(quantity, used):
            message = f"{used} of {quantity} barcode scans are used (grace {grace}%)"
            return Verdict(item, False, "quota_exhausted", message, code=120, counts=scan_counts)
        return Verdict(item, True, "quota_available", counts=scan_counts)
    quotas = page_quotas(item)
    exhausted = sorted(m for m, q in quotas.items() if item.quota_limit_reached(q, counters.get(f"pages_{m}", 0)))
    counts: dict[str, Any] = {
        "used": {m: counters.get(f"pages_{m}", 0) for m in quotas},
        "quantity": quotas,
        "grace": grace,
    }
    unlicensed = sorted((modules or set()) - set(quotas))
    if unlicensed:
        message = f"this item does not license the page module(s) {', '.join(unlicensed)}"
        return Verdict(item, False, "pages_module_not_licensed", message, code=120, counts=counts)
    hit = sorted(set(exhausted) & modules) if modules else []
    if hit or len(exhausted) == len(quotas):
        which = hit or exhausted
        detail = ", ".join(f"{m} {counters.get(f'pages_{m}', 0)} of {quotas[m]}" for m in which)
        message = f"page quota exhausted: {detail} (grace {grace}%)"
        return Verdict(item, False, "pages_exhausted", message, code=120, counts=counts)
    return Verdict(item, True, "pages_available", counts=counts)


def lock_item(item: LicenseItem) -> None:
    """Serialize the seat and slot allocations of one item until the transaction ends.

    FOR NO KEY UPDATE (not FOR UPDATE): allocators exclude each other, but inserts that merely
    reference the item (decisions, reports) are not blocked. With FOR UPDATE, a request holding
    the item lock that waits on a device row being updated by a retry, which itself inserts a
    decision referencing the item, deadlocks (seen in tests/test_api_races.py). SQLite ignores
    the clause: its IMMEDIATE transactions hold the database write lock from BEGIN."""
    list(LicenseItem.objects.select_for_update(no_key=True).filter(pk=item.pk).values_list("pk", flat=True))


class LiveSeats:
    """The seats of the database (``devices.seats``). A what-if replay (``usage.replay``) passes
    ``seat_verdict`` its own in-memory book with the same two methods instead."""

    held = staticmethod(held_seats)
    take = staticmethod(take_seat)


LIVE_SEATS = LiveSeats()


def seat_verdict(
    item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str = "", seats: Any = LIVE_SEATS
) -> Verdict:
    """A seat (client device) or a server for ``device`` on ``item``. A device holding one keeps
    it; another takes one through the item's seat counter (``devices.seats.take_seat``: the
    counter row is locked until commit, so simultaneous requests never overshoot the ceiling),
    and the caller binds it in the same transaction. ``seats``: where seats are counted and
    taken (the database unless a replay says otherwise)."""
    noun = "servers" if item.option == rules.PER_SERVER else "seats"
    if device is not None and device.item_id == item.pk and Device.holds_seat(device, now):
        counts = {"active": seats.held(item, now=now), "quantity": item.quantity, "ceiling": item.seat_ceiling}
        return Verdict(item, True, f"{noun}_kept", counts=counts)
    # Not counting the requesting device_uuid: when the same new device authorizes twice at once,
    # the other request's seat is its own (the second insert then conflicts and is retried).
    take = seats.take(item, device, now=now, device_uuid=device_uuid)
    counts = {"active": take.others, "quantity": item.quantity, "ceiling": item.seat_ceiling}
    if not take.taken:
        grace = counts["ceiling"] - counts["quantity"]
        if noun == "servers":
            message = f"{counts['active']} of {counts['quantity']} servers are active"
        else:
            message = f"{counts['active']} of {counts['quantity']} seats are taken (grace {grace})"
        return Verdict(item, False, f"{noun}_exhausted", message, code=120, counts=counts)
    return Verdict(item, True, f"{noun[:-1]}_taken", counts=counts)


def overuse_counts(item: LicenseItem, counters: dict[str, int] | None = None) -> dict[str, int]:
    spent = (counters if counters is not None else counter_values(item)).get(OVERUSE_SPENT, 0)
    return {
        "quantity": quantity_of(item),
        "ceiling": item.concurrency_ceiling,
        "budget": item.effective_overuse_budget,
        "spent": spent,
    }


def item_verdict(
    item: LicenseItem,
    device: Device | None,
    *,
    origin: str | None,
    now: datetime,
    device_uuid: str = "",
    seats: Any = LIVE_SEATS,
    counters: dict[str, int] | None = None,
) -> Verdict:
    """Whether ``item`` takes this authorization: term first, then the option's rule. ``seats``
    and ``counters`` (the item's quota counters) are read from the database unless given (a
    what-if replay gives its in-memory state)."""
    refusal = term_verdict(item, now=now)
    if refusal is not None:
        return refusal
    option = item.option
    if option in (rules.PER_CLIENT_DEVICE, rules.PER_SERVER):
        return seat_verdict(item, device, now=now, device_uuid=device_uuid, seats=seats)
    if option in (rules.PER_BARCODE_SCAN, rules.PER_PAGE):
        return quota_verdict(item, counter_values(item) if counters is None else counters)
    if option == rules.PER_DOMAIN:
        counts = {"domain": item.domain}
        if origin and domain_matches(item.domain, origin):
            return Verdict(item, True, "domain_matches", counts=counts)
        message = f"origin {origin} is not in the licensed domain {item.domain}"
        return Verdict(item, False, "domain_mismatch", message, code=103, counts=counts)
    # per_concurrent_device: any number of devices may be authorized; slots decide at usage.
    return Verdict(item, True, "concurrent_authorized", counts=overuse_counts(item, counters))


def choose_refusal(verdicts: list[Verdict]) -> Verdict:
    """None fits: the refusal of the first matching item that could serve (120, 103); when every
    matching item is unusable, the first one's (111/112/113: all the same in the usual case)."""
    usable = [v for v in verdicts if v.code not in TERM_CODES]
    return usable[0] if usable else verdicts[0]
