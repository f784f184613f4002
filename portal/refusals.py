"""Reads for the refusals of a project's devices (SPEC section 10, "the refusals of their own
devices ... grouped by item and rule"): groups with counts over a period, the latest refusal of
each group explained, and a hint about the seat items. A fixed number of queries whatever the
number of refusals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min

from devices.models import Decision, Device
from licenses import rules
from portal.explain import explain, rule_label

SEAT_RULES = ("seats_exhausted", "servers_exhausted")


@dataclass
class RefusalGroup:
    item: object | None
    rule: str
    count: int
    devices: int
    last_at: datetime
    latest: Decision
    explanation: str

    @property
    def label(self) -> str:
        return rule_label(self.rule)


def idle_hints(items, *, now: datetime) -> dict[int, str]:
    """item id -> what the owner can do now about a seat item that refused devices: the device
    holding a seat that was seen longest ago (one query for every item)."""
    seat_ids = [i.pk for i in items if i.option in (rules.PER_CLIENT_DEVICE, rules.PER_SERVER)]
    if not seat_ids:
        return {}
    oldest = (
        Device.objects.holding_seat(now)
        .filter(item_id__in=seat_ids)
        .values_list("item_id")
        .annotate(seen=Min("last_seen_at"), holding=Count("id"))
        .values_list("item_id", "seen", "holding")
    )
    hints = {}
    for item_id, seen, holding in oldest:
        days = math.floor((now - seen).total_seconds() / 86400)
        ago = "today" if days < 1 else f"{days:,} day{'s' if days != 1 else ''} ago"
        hints[item_id] = (
            f"Now {holding:,} device{'s' if holding != 1 else ''} hold a seat; the one idle longest was last "
            f"seen {ago} (releasing idle devices frees their seats)."
        )
    return hints


def refusal_groups(project, items, *, since: datetime, until: datetime, now: datetime) -> list[RefusalGroup]:
    by_id = {i.pk: i for i in items}
    rows = list(
        Decision.objects.filter(project=project, allowed=False, created_at__gte=since, created_at__lt=until)
        .values("item_id", "rule")
        .annotate(n=Count("id"), devices=Count("device_uuid", distinct=True), last=Max("created_at"), latest=Max("id"))
        .order_by("-n", "rule", "item_id")
    )
    latest = Decision.objects.in_bulk([r["latest"] for r in rows])
    hints = idle_hints(
        [by_id[r["item_id"]] for r in rows if r["item_id"] in by_id and r["rule"] in SEAT_RULES], now=now
    )
    groups = []
    for r in rows:
        decision = latest[r["latest"]]
        hint = hints.get(r["item_id"], "") if r["rule"] in SEAT_RULES else ""
        groups.append(
            RefusalGroup(
                item=by_id.get(r["item_id"]),
                rule=r["rule"],
                count=r["n"],
                devices=r["devices"],
                last_at=r["last"],
                latest=decision,
                explanation=explain(decision, hint=hint),
            )
        )
    return groups
