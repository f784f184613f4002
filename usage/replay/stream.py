"""The recorded events a what-if replay streams (decisions and usage reports of one item, in time
order) and the figures it adds up (``Result``, the ``what_if`` JSON)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.db.models.fields.json import KT

from devices.models import Decision
from licenses import rules
from licenses.clock import rfc3339
from licenses.models import LicenseItem
from usage.models import UsageReport
from usage.replay.policy import FIELDS

CHUNK = 2000
# Reports read with their packed sightings (up to about 1 MiB each, the body limit): fewer a fetch.
SIGHTINGS_CHUNK = 100


@dataclass
class Event:
    at: datetime
    order: int  # at the same instant: authorize, then usage, then release
    pk: int
    kind: str  # authorize, offline, release, usage
    device_uuid: str
    allowed: bool
    code: int | None
    rule: str = ""
    item_id: int | None = None
    slot_start: datetime | None = None
    counted: dict[str, int] = field(default_factory=dict)
    sightings: bytes | None = None  # usage: the packed sightings (read for a changed dedup interval)


@dataclass
class Outcome:
    """One recorded request and what the replay says of it."""

    event: Event
    allowed: bool
    code: int | None
    rule: str
    without_seat: bool = False  # a report from a device the replay had refused (it would have stopped)
    counted: dict[str, int] | None = None  # a report: what it counts under the policy


@dataclass
class Result:
    item: LicenseItem
    policy: LicenseItem
    start: datetime
    end: datetime
    changes: dict[str, Any]
    requests: int = 0
    authorizations: int = 0
    refused: int = 0
    actual_refused: int = 0
    refused_authorizations: int = 0
    actual_refused_authorizations: int = 0
    reports_without_seat: int = 0
    differs: int = 0
    per_rule: Counter = field(default_factory=Counter)
    actual_per_rule: Counter = field(default_factory=Counter)
    per_day: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    devices_per_day: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    actual_devices_per_day: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    devices: set = field(default_factory=set)
    actual_devices: set = field(default_factory=set)
    overuse_spent: int = 0
    actual_overuse_spent: int = 0
    peak_seats: int = 0
    barcode_scans: int = 0  # scan items: counted in the window under the policy
    actual_barcode_scans: int = 0
    reports_deduplicated: int = 0  # reports whose stored sightings were deduplicated again

    def add(self, outcome: Outcome) -> None:
        event, day = outcome.event, outcome.event.at.date().isoformat()
        self.requests += 1
        if event.kind != "usage":
            self.authorizations += 1
        if not event.allowed:
            self.actual_refused += 1
            self.actual_per_rule[event.rule or str(event.code)] += 1
            self.per_day[day]["actual_refused"] += 1
            self.actual_devices_per_day[day].add(event.device_uuid)
            self.actual_devices.add(event.device_uuid)
            if event.kind != "usage":
                self.actual_refused_authorizations += 1
        if (outcome.allowed, outcome.code) != (event.allowed, event.code):
            self.differs += 1
        if outcome.without_seat:
            self.reports_without_seat += 1
            return
        if not outcome.allowed:
            self.refused += 1
            self.per_rule[outcome.rule] += 1
            self.per_day[day]["refused"] += 1
            self.devices_per_day[day].add(event.device_uuid)
            self.devices.add(event.device_uuid)
            if event.kind != "usage":
                self.refused_authorizations += 1

    def as_dict(self) -> dict[str, Any]:
        days = sorted(set(self.per_day) | set(self.devices_per_day))
        policy = {name: getattr(self.item, name) for name in FIELDS.get(self.item.option, ())}
        out: dict[str, Any] = {
            "item": self.item.item_id,
            "option": self.item.option,
            "from": rfc3339(self.start),
            "to": rfc3339(self.end),
            "policy": policy,
            "changed": self.changes,
            "requests": self.requests,
            "authorizations": self.authorizations,
            "refused": self.refused,
            "actual_refused": self.actual_refused,
            "refused_authorizations": self.refused_authorizations,
            "actual_refused_authorizations": self.actual_refused_authorizations,
            "devices_refused": len(self.devices),
            "actual_devices_refused": len(self.actual_devices),
            "sample_devices": sorted(self.devices)[:20],
            "reports_without_seat": self.reports_without_seat,
            "differs": self.differs,
            "per_rule": dict(sorted(self.per_rule.items())),
            "actual_per_rule": dict(sorted(self.actual_per_rule.items())),
            "per_day": [
                {
                    "day": day,
                    "refused": self.per_day[day]["refused"],
                    "actual_refused": self.per_day[day]["actual_refused"],
                    "devices": len(self.devices_per_day[day]),
                    "actual_devices": len(self.actual_devices_per_day[day]),
                }
                for day in days
            ],
            "overuse_spent": self.overuse_spent,
            "actual_overuse_spent": self.actual_overuse_spent,
            "peak_seats": self.peak_seats,
        }
        if self.item.option == rules.PER_BARCODE_SCAN:
            out["barcode_scans"] = self.barcode_scans
            out["actual_barcode_scans"] = self.actual_barcode_scans
            out["reports_deduplicated"] = self.reports_deduplicated
        return out


ORDER = {"authorize": 0, "offline": 0, "usage": 1, "release": 2}


def decisions(item: LicenseItem, start: datetime, end: datetime) -> Iterator[Event]:
    """Authorize, offline and release decisions of the item's project that concern the item: its
    own, and allowed authorizations elsewhere (they move a device off the item)."""
    rows = (
        Decision.objects.filter(project_id=item.project_id, created_at__gte=start, created_at__lt=end)
        .filter(endpoint__in=(Decision.AUTHORIZE, Decision.OFFLINE, Decision.RELEASE))
        .filter(Q(item_id=item.pk) | Q(allowed=True, endpoint__in=(Decision.AUTHORIZE, Decision.OFFLINE)))
        .order_by("created_at", "id")
        .values_list("pk", "created_at", "endpoint", "device_uuid", "allowed", "code", "rule", "item_id")
    )
    for pk, at, endpoint, uuid, allowed, code, rule, item_id in rows.iterator(chunk_size=CHUNK):
        yield Event(at, ORDER[endpoint], pk, endpoint, uuid, allowed, code, rule, item_id)


def reports(item: LicenseItem, start: datetime, end: datetime, *, sightings: bool = False) -> Iterator[Event]:
    """The item's usage reports received in ``[start, end)``, in order; with ``sightings`` each
    with its packed sightings (None for a report that carried none)."""
    columns = ["pk", "received_at", "device__device_uuid", "allowed", "error_code", "slot_start", "counted"]
    rows = (
        UsageReport.objects.filter(item_id=item.pk, received_at__gte=start, received_at__lt=end)
        .annotate(error_code=KT("response__error__code"))
        .order_by("received_at", "id")
        .values_list(*columns, *(["raw_sightings"] if sightings else []))
    )
    for pk, at, uuid, allowed, code, slot_start, counted, *packed in rows.iterator(
        chunk_size=SIGHTINGS_CHUNK if sightings else CHUNK
    ):
        blob = packed[0] if packed else None
        yield Event(
            at,
            1,
            pk,
            "usage",
            uuid,
            allowed,
            None if code is None else int(code),
            "",
            item.pk,
            slot_start,
            counted or {},
            None if blob is None else bytes(blob),
        )
