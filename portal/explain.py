"""A recorded decision in words (SPEC section 10: "each explained in words from the recorded
decision (rule, counts and limit at that moment)"). ``explain`` is the one place that turns a
``devices.models.Decision`` into a sentence; the refusals page, the project page's panel, a
device's timeline and the staff pages all call it.

Only what the decision recorded is used (its rule, counts, message, time), so the sentence says
what was true at that moment, not what is true now. The one exception is ``hint``, which the
caller passes in and which is worded as the present ("now")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

RULE_LABELS = {
    "seats_exhausted": "All seats taken",
    "servers_exhausted": "All servers taken",
    "quota_exhausted": "Scan quota used up",
    "pages_exhausted": "Page quota used up",
    "pages_module_not_licensed": "Page module not licensed",
    "domain_mismatch": "Origin outside the licensed domain",
    "slot_ceiling_reached": "Too many devices in a 3-minute slot",
    "overuse_budget_spent": "Overuse budget spent",
    "license_expired": "License expired",
    "license_not_yet_effective": "License not started yet",
    "license_suspended": "License suspended",
    "license_revoked": "License revoked",
    "no_matching_item": "No item serves this device",
    "seat_lost": "Seat lost (expired or released)",
    "device_not_authorized": "Never authorized",
    "idempotency_conflict": "Report id reused with another body",
}


def rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule.replace("_", " ").capitalize())


def when(dt: datetime | None) -> str:
    """The one date format of the portal: ``2026-11-27 14:02 UTC``."""
    if dt is None:
        return ""
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def n(value: Any) -> str:
    """An integer with thousands separators (``12,345``); anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    return f"{value:,}"


def _plural(count: int, word: str) -> str:
    return f"{n(count)} {word}{'' if count == 1 else 's'}"


def _seats(c: dict, noun: str, at: str) -> str:
    active, quantity, ceiling = c.get("active"), c.get("quantity"), c.get("ceiling")
    if not isinstance(active, int) or not isinstance(quantity, int):
        return ""
    if noun == "servers":
        return f"{n(active)} of {_plural(quantity, 'server')} were active at {at}, so no new server could start."
    grace = (ceiling or quantity) - quantity
    limit = f"{_plural(quantity, 'seat')}" + (f" + {n(grace)} grace" if grace else "")
    return f"{n(active)} of {limit} were taken at {at}, so this new device got no seat."


def _quota(c: dict, at: str) -> str:
    used, quantity, grace = c.get("used"), c.get("quantity"), c.get("grace", 0)
    if not isinstance(used, int) or not isinstance(quantity, int):
        return ""
    return (
        f"{n(used)} of {n(quantity)} barcode scans were used at {at} (devices are refused from "
        f"{n(quantity * (100 + grace) // 100)}, the quantity + {grace} % grace)."
    )


def _pages(c: dict, at: str) -> str:
    used, quantity, grace = c.get("used") or {}, c.get("quantity") or {}, c.get("grace", 0)
    if not isinstance(used, dict) or not isinstance(quantity, dict) or not quantity:
        return ""
    modules = "; ".join(f"{m} {n(used.get(m, 0))} of {n(q)}" for m, q in sorted(quantity.items()))
    return f"Pages used at {at}: {modules} (grace {grace} %)."


def _slot(c: dict, at: str, rule: str) -> str:
    active, quantity, ceiling = c.get("active"), c.get("quantity"), c.get("ceiling")
    slot = c.get("slot", "")
    if not isinstance(active, int) or not isinstance(quantity, int):
        return ""
    slot_text = f"the slot starting {slot.replace('T', ' ').replace('Z', ' UTC')}" if slot else f"the slot at {at}"
    if rule == "slot_ceiling_reached":
        return (
            f"{n(active)} devices were already active in {slot_text}: the limit is {n(quantity)} and "
            f"the overuse ceiling {n(ceiling)}, so this device was not counted."
        )
    return (
        f"{n(active)} devices were active in {slot_text}, above the limit of {n(quantity)}, and the overuse "
        f"budget was spent ({n(c.get('spent', 0))} of {n(c.get('budget', 0))} device-slots)."
    )


def explain(decision, *, hint: str = "") -> str:
    """One sentence (or two) saying why the decision came out as it did, from its own record."""
    at = when(decision.created_at)
    c = decision.counts if isinstance(decision.counts, dict) else {}
    rule = decision.rule
    text = ""
    if rule in ("seats_exhausted", "servers_exhausted"):
        text = _seats(c, "servers" if rule.startswith("servers") else "seats", at)
    elif rule == "quota_exhausted":
        text = _quota(c, at)
    elif rule == "pages_exhausted":
        text = _pages(c, at)
    elif rule == "pages_module_not_licensed":
        text = f"The report counted pages of a module this item does not license ({decision.message})."
    elif rule == "domain_mismatch":
        domain = c.get("domain", "")
        text = f"At {at} the device's origin was not in the licensed domain {domain}" + (
            f" ({decision.message})." if decision.message else "."
        )
    elif rule in ("slot_ceiling_reached", "overuse_budget_spent"):
        text = _slot(c, at, rule)
    elif rule == "seat_lost":
        until = c.get("active_until", "")
        text = (
            f"At {at} the device reported usage after its seat had ended"
            + (f" (active until {until.replace('T', ' ').replace('Z', ' UTC')})" if until else "")
            + ": the usage was recorded and the device was told to authorize again."
        )
    elif rule == "device_not_authorized":
        text = f"At {at} a device this project never authorized sent a request."
    elif rule.startswith("license_") or rule == "no_matching_item":
        text = f"At {at}: {decision.message}." if decision.message else ""
    elif decision.allowed:
        text = _allowed(rule, c, at)
    if not text:
        text = f"At {at}: {decision.message or rule_label(rule)}."
    if hint:
        text += " " + hint
    return text


def _allowed(rule: str, c: dict, at: str) -> str:
    if rule in ("seat_taken", "server_taken") and isinstance(c.get("active"), int):
        noun = "server" if rule == "server_taken" else "seat"
        return f"Took a {noun} at {at}: {n(c['active'] + 1)} of {_plural(c.get('quantity') or 0, noun)} then in use."
    if rule in ("seats_kept", "servers_kept"):
        noun = "server" if rule == "servers_kept" else "seat"
        if isinstance(c.get("active"), int) and isinstance(c.get("quantity"), int):
            return f"Kept its {noun} at {at}: {n(c['active'])} of {_plural(c['quantity'], noun)} in use."
        return f"Kept its {noun} at {at}."
    if rule.startswith("released_by_"):
        return f"Released at {at} by the {rule.removeprefix('released_by_')}: its seat was freed."
    return ""
