"""What-if replay: the recorded contacts of one item over a past window, run again through the
rule code the API uses, with some policy fields changed (docs/insight.md).

Nothing here re-derives a rule. The verdicts are the API's own functions
(``devices.verdicts.item_verdict`` for authorizations, ``usage.services._usage_verdict`` for
reports, ``usage.services.slot_verdict`` for a concurrent slot, ``active_until_for`` for how long
a contact keeps a device active); the replay only gives them an in-memory state instead of the
database: its own devices (unsaved ``Device`` objects), a seat book (``ReplaySeats``: the two
queries ``seat_verdict`` makes, seats held and take one), the quota counters and the slots.
Live data is only read.

The window is streamed in time order (decisions of authorize, release and offline registration
by ``created_at``, usage reports by ``received_at``, each with ``iterator(chunk_size=...)``) and
merged: memory holds one entry per device of the item and the slots of the last 30 days (the
oldest slot a report may name, SPEC section 6), never the reports.

What is not policy is taken as recorded: a license's status at the time (a term refusal stays one),
the devices' requests (a device the replay refuses would in fact have stopped; its later reports
are counted apart, ``reports_without_seat``), and the state at the window's start (the devices
holding a seat then, the quota used and the overuse budget spent before it).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, Sum
from django.db.models.fields.json import KT

from devices.models import OVERUSE_SPENT, Decision, Device
from devices.outcomes import DEVICE_NOT_AUTHORIZED, TERM_CODES
from devices.seats import Take, seat_refused
from devices.services import offline_active_until
from devices.verdicts import active_until_for, item_verdict, term_verdict
from licenses import rules
from licenses.clock import rfc3339
from licenses.models import License, LicenseItem
from usage.models import SlotDevice, UsageCount, UsageReport
from usage.services import _usage_verdict, slot_verdict

MAX_WINDOW = timedelta(days=90)
CHUNK = 2000
SLOT_MEMORY = timedelta(days=30)  # SPEC section 6: a slot more than 30 days old is refused
REPLAYABLE = (
    rules.PER_CLIENT_DEVICE,
    rules.PER_SERVER,
    rules.PER_CONCURRENT_DEVICE,
    rules.PER_BARCODE_SCAN,
    rules.PER_PAGE,
)
# The policy fields a replay may change, by option, and how a value is read.
FIELDS: dict[str, tuple[str, ...]] = {
    rules.PER_CLIENT_DEVICE: ("quantity", "device_grace_percent", "period"),
    rules.PER_SERVER: ("quantity", "heartbeat_timeout_s"),
    rules.PER_CONCURRENT_DEVICE: ("quantity", "overuse_percent", "overuse_budget"),
    rules.PER_BARCODE_SCAN: ("quantity", "quota_grace_percent"),
    rules.PER_PAGE: ("quantities", "quota_grace_percent"),
}
# Fields asked for that a replay cannot honour, and why.
UNREPLAYABLE = {
    "dedup_interval_ms": "the server keeps the deduplicated counts of reports, not their raw sightings, "
    "so a changed dedup interval cannot be replayed",
}


class PolicyError(ValueError):
    """A changed policy field that is unknown, not of this option, or out of range."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field, self.reason = field_name, reason


def parse_changes(item: LicenseItem, pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
    """``["quantity=8", "overuse_percent=20"]`` (or a dict) into checked field values."""
    raw: dict[str, Any] = {}
    if isinstance(pairs, dict):
        raw.update(pairs)
    else:
        for pair in pairs:
            name, _, value = pair.partition("=")
            raw[name] = value
    allowed = FIELDS.get(item.option, ())
    out: dict[str, Any] = {}
    for name, value in raw.items():
        name = name.strip()
        if name in UNREPLAYABLE:
            raise PolicyError(name, UNREPLAYABLE[name])
        if name.startswith("quantities.") and "quantities" in allowed:
            module = name.split(".", 1)[1]
            if module not in (item.quantities or {}):
                raise PolicyError(name, f"this item does not license the page module {module!r}")
            out.setdefault("quantities", dict(item.quantities or {}))[module] = _int(name, value, minimum=1)
            continue
        if name not in allowed:
            what = ", ".join(allowed) or "nothing"
            raise PolicyError(name, f"not a policy field a {item.option} replay can change (it can change {what})")
        if name == "period":
            if value not in rules.PERIOD_SECONDS:
                raise PolicyError(name, f"must be one of {', '.join(rules.PERIOD_SECONDS)}")
            out[name] = value
        elif name == "overuse_budget" and value in ("", "default", "none"):
            out[name] = None
        else:
            out[name] = _int(name, value, minimum=1 if name in ("quantity", "heartbeat_timeout_s") else 0)
    return out


def _int(name: str, value: Any, *, minimum: int) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise PolicyError(name, f"must be an integer, not {value!r}") from None
    if n < minimum:
        raise PolicyError(name, f"must be at least {minimum}")
    if n > 10_000_000:
        raise PolicyError(name, "must be at most 10000000")
    return n


def check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise PolicyError("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise PolicyError("to", f"a window is at most {MAX_WINDOW.days} days")


def policy_item(item: LicenseItem, changes: dict[str, Any]) -> LicenseItem:
    """An unsaved copy of ``item`` with ``changes``, on an unsaved copy of its license marked
    active (the status at the time is history, not policy: term refusals are kept as recorded)."""
    lic = item.license
    lic_copy = License(**{f.attname: getattr(lic, f.attname) for f in License._meta.concrete_fields})
    lic_copy.status = License.ACTIVE
    copy = LicenseItem(**{f.attname: getattr(item, f.attname) for f in LicenseItem._meta.concrete_fields})
    copy.license = lic_copy
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


class ReplaySeats:
    """The seat book of a replay: the two queries ``seat_verdict`` makes (``held``, ``take``),
    answered from the replay's devices. ``take`` only answers; the replay binds the device."""

    def __init__(self, devices: dict[str, Device]) -> None:
        self.devices = devices
        self._until: list[tuple[datetime, str]] = []  # a heap of (active_until, uuid), lazily cleaned
        self.active: set[str] = set()

    def track(self, device: Device) -> None:
        if device.state == Device.ACTIVE and device.item_id is not None:
            self.active.add(device.device_uuid)
            heapq.heappush(self._until, (device.active_until, device.device_uuid))
            if len(self._until) > 4 * len(self.active) + 64:  # every contact pushes: keep it O(devices)
                self._until = [(self.devices[u].active_until, u) for u in self.active]
                heapq.heapify(self._until)
        else:
            self.active.discard(device.device_uuid)

    def _clean(self, now: datetime) -> None:
        while self._until and self._until[0][0] <= now:
            until, uuid = heapq.heappop(self._until)
            device = self.devices.get(uuid)
            if device is not None and uuid in self.active and not device.holds_seat(now):
                self.active.discard(uuid)

    def held(self, item: LicenseItem, *, now: datetime) -> int:
        self._clean(now)
        return len(self.active)

    def take(self, item: LicenseItem, device: Device | None, *, now: datetime, device_uuid: str = "") -> Take:
        self._clean(now)
        others = len(self.active - {device_uuid})
        return Take(not seat_refused(item, others), others)


@dataclass
class _ReplayReport:
    """What ``usage.services._usage_verdict`` reads of a report."""

    device: Device
    item: LicenseItem
    now: datetime
    pages: dict[str, int]
    slot_verdict: Any = None


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


@dataclass
class Outcome:
    """One recorded request and what the replay says of it."""

    event: Event
    allowed: bool
    code: int | None
    rule: str
    without_seat: bool = False  # a report from a device the replay had refused (it would have stopped)


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
        return {
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


_ORDER = {"authorize": 0, "offline": 0, "usage": 1, "release": 2}


def _decisions(item: LicenseItem, start: datetime, end: datetime) -> Iterator[Event]:
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
        yield Event(at, _ORDER[endpoint], pk, endpoint, uuid, allowed, code, rule, item_id)


def _reports(item: LicenseItem, start: datetime, end: datetime) -> Iterator[Event]:
    rows = (
        UsageReport.objects.filter(item_id=item.pk, received_at__gte=start, received_at__lt=end)
        .annotate(error_code=KT("response__error__code"))
        .order_by("received_at", "id")
        .values_list("pk", "received_at", "device__device_uuid", "allowed", "error_code", "slot_start", "counted")
    )
    for pk, at, uuid, allowed, code, slot_start, counted in rows.iterator(chunk_size=CHUNK):
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
        )


class Replay:
    """One replay of ``item`` over ``[start, end)`` with ``changes``."""

    def __init__(self, item: LicenseItem, *, start: datetime, end: datetime, changes: dict[str, Any]) -> None:
        if item.option not in REPLAYABLE:
            raise PolicyError("item", f"a {item.option} item has no policy a replay can change")
        check_window(start, end)
        self.item, self.start, self.end, self.changes = item, start, end, changes
        self.policy = policy_item(item, changes)
        self.devices: dict[str, Device] = {}
        self.seats = ReplaySeats(self.devices)
        self.refused_here: set[str] = set()  # devices whose last authorization the replay refused
        self.counters: dict[str, int] = {}
        self.slots: dict[datetime, set[str]] = {}
        self.result = Result(item=item, policy=self.policy, start=start, end=end, changes=changes)
        self._pk = 0

    # --- the state at the window's start ----------------------------------------------------

    def _device(self, uuid: str) -> Device:
        device = self.devices.get(uuid)
        if device is None:
            self._pk += 1
            device = Device(device_uuid=uuid, state=Device.EXPIRED, active_until=self.start, item_id=None)
            device.pk = self._pk
            self.devices[uuid] = device
        return device

    def seed(self) -> None:
        """Devices holding a seat at the start (their last contact before it, under the changed
        period), the quota used and the overuse budget spent before it, the slots of the last
        30 days before it."""
        item, start = self.item, self.start
        if item.option in (rules.PER_BARCODE_SCAN, rules.PER_PAGE):
            used = (
                UsageCount.objects.filter(item_id=item.pk, report__received_at__lt=start)
                .values("metric")
                .annotate(n=Sum("count"))
            )
            self.counters = {row["metric"]: row["n"] for row in used}
            return
        if item.option == rules.PER_CONCURRENT_DEVICE:
            spent = SlotDevice.objects.filter(item_id=item.pk, overuse=True, slot_start__lt=start).count()
            self.counters = {OVERUSE_SPENT: spent}
            slots = SlotDevice.objects.filter(
                item_id=item.pk, slot_start__gte=start - SLOT_MEMORY, slot_start__lt=start
            )
            for slot_start, uuid in slots.values_list("slot_start", "device__device_uuid").iterator(chunk_size=CHUNK):
                self.slots.setdefault(slot_start, set()).add(uuid)
        before = Decision.objects.filter(project_id=item.project_id, created_at__lt=start)
        last_auth = dict(
            before.filter(item_id=item.pk, allowed=True, endpoint__in=(Decision.AUTHORIZE, Decision.OFFLINE))
            .values("device_uuid")
            .annotate(at=Max("created_at"))
            .values_list("device_uuid", "at")
        )
        if not last_auth:
            return
        moved = dict(
            before.filter(allowed=True, endpoint=Decision.AUTHORIZE)
            .exclude(item_id=item.pk)
            .values("device_uuid")
            .annotate(at=Max("created_at"))
            .values_list("device_uuid", "at")
        )
        released = dict(
            before.filter(item_id=item.pk, endpoint=Decision.RELEASE)
            .exclude(rule__in=("release_undone", "already_released"))
            .values("device_uuid")
            .annotate(at=Max("created_at"))
            .values_list("device_uuid", "at")
        )
        reported = dict(
            UsageReport.objects.filter(item_id=item.pk, allowed=True, received_at__lt=start)
            .values("device__device_uuid")
            .annotate(at=Max("received_at"))
            .values_list("device__device_uuid", "at")
        )
        for uuid, auth_at in last_auth.items():
            contact = max(auth_at, reported.get(uuid, auth_at))
            if moved.get(uuid, start) < start and moved[uuid] > auth_at:
                continue
            if uuid in released and released[uuid] >= contact:
                continue
            device = self._device(uuid)
            device.state, device.item_id = Device.ACTIVE, item.pk
            device.active_until = active_until_for(self.policy, now=contact)
            self.seats.track(device)

    # --- one event --------------------------------------------------------------------------

    def _authorize(self, event: Event) -> Outcome:
        device = self._device(event.device_uuid)
        if event.item_id != self.item.pk:  # allowed on another item: it leaves this one
            device.state, device.item_id = Device.EXPIRED, event.item_id
            self.seats.track(device)
            return Outcome(event, event.allowed, event.code, event.rule)
        if not event.allowed and event.code in TERM_CODES:
            return Outcome(event, False, event.code, event.rule)  # the status at the time, as recorded
        existing = device if device.item_id is not None else None
        verdict = item_verdict(
            self.policy,
            existing,
            origin=None,
            now=event.at,
            device_uuid=event.device_uuid,
            seats=self.seats,
            counters=self.counters,
        )
        if verdict.allowed:
            self.refused_here.discard(event.device_uuid)
            if event.kind == Decision.OFFLINE:
                until = offline_active_until(self.policy, now=event.at)
            else:
                until = active_until_for(self.policy, now=event.at)
            device.state, device.item_id, device.active_until = Device.ACTIVE, self.item.pk, until
            self.seats.track(device)
            if self.item.option in (rules.PER_CLIENT_DEVICE, rules.PER_SERVER):
                self.result.peak_seats = max(self.result.peak_seats, self.seats.held(self.policy, now=event.at))
        else:
            self.refused_here.add(event.device_uuid)
        return Outcome(event, verdict.allowed, verdict.code, verdict.rule)

    def _release(self, event: Event) -> Outcome:
        device = self._device(event.device_uuid)
        if event.rule == "release_undone":
            if device.state == Device.RELEASED and device.active_until > event.at:
                if self.seats.take(self.policy, device, now=event.at, device_uuid=event.device_uuid).taken:
                    device.state = Device.ACTIVE
                    self.seats.track(device)
        elif device.state == Device.ACTIVE and device.item_id == self.item.pk:
            device.state = Device.RELEASED
            self.seats.track(device)
        return Outcome(event, True, None, event.rule)

    def _usage(self, event: Event) -> Outcome:
        item, now = self.policy, event.at
        device = self._device(event.device_uuid)
        if device.item_id != self.item.pk:
            device.item_id = self.item.pk  # a report is recorded against the device's last item
        counted = event.counted
        for metric, n in counted.items():  # recorded whatever the answer (SPEC section 4)
            if (item.option == rules.PER_BARCODE_SCAN and metric == "barcode_scans") or (
                item.option == rules.PER_PAGE and metric.startswith("pages_")
            ):
                self.counters[metric] = self.counters.get(metric, 0) + n
        holds = device.holds_seat(now)
        if not event.allowed and event.code in TERM_CODES and holds:
            return Outcome(event, False, event.code, "term")  # the status at the time, as recorded
        usable = term_verdict(item, now=now) is None
        if holds and usable:
            device.active_until = active_until_for(item, now=now)
            self.seats.track(device)
        pages = {m.removeprefix("pages_"): n for m, n in counted.items() if m.startswith("pages_")}
        report = _ReplayReport(device=device, item=item, now=now, pages=pages)
        if item.option == rules.PER_CONCURRENT_DEVICE and counted and holds and usable:
            report.slot_verdict = self._admit(event, item)
        verdict = _usage_verdict(report, self.counters)  # type: ignore[arg-type]  # reads only _ReplayReport's fields
        without_seat = (
            not verdict.allowed and verdict.code == DEVICE_NOT_AUTHORIZED and event.device_uuid in self.refused_here
        )
        return Outcome(event, verdict.allowed, verdict.code, verdict.rule, without_seat=without_seat)

    def _admit(self, event: Event, item: LicenseItem) -> Any:
        slot_start = event.slot_start
        assert slot_start is not None
        in_slot = self.slots.setdefault(slot_start, set())
        verdict = slot_verdict(
            item,
            slot_start=slot_start,
            active=len(in_slot),
            counted=event.device_uuid in in_slot,
            counters=self.counters,
        )
        if verdict.rule in ("slot_within_quantity", "slot_overuse"):
            in_slot.add(event.device_uuid)
        if verdict.rule == "slot_overuse":
            self.counters[OVERUSE_SPENT] = self.counters.get(OVERUSE_SPENT, 0) + 1
            self.result.overuse_spent += 1
        return verdict

    def _forget_old_slots(self, now: datetime) -> None:
        horizon = now - SLOT_MEMORY
        for slot_start in [s for s in self.slots if s < horizon]:
            del self.slots[slot_start]

    # --- the run ----------------------------------------------------------------------------

    def outcomes(self, *, progress: Callable[[datetime], None] | None = None) -> Iterator[Outcome]:
        self.seed()
        streams = [_decisions(self.item, self.start, self.end), _reports(self.item, self.start, self.end)]
        merged = heapq.merge(*streams, key=lambda e: (e.at, e.order, e.pk))
        handlers = {"authorize": self._authorize, "offline": self._authorize, "release": self._release}
        last_day = None
        for n, event in enumerate(merged):
            outcome = handlers.get(event.kind, self._usage)(event)
            yield outcome
            if n % 1000 == 0:
                if self.slots and n % 10_000 == 0:
                    self._forget_old_slots(event.at)
                if progress is not None and event.at.date() != last_day:
                    last_day = event.at.date()
                    progress(event.at)

    def run(self, *, progress: Callable[[datetime], None] | None = None) -> Result:
        for outcome in self.outcomes(progress=progress):
            self.result.add(outcome)
        if self.item.option == rules.PER_CONCURRENT_DEVICE:
            self.result.actual_overuse_spent = SlotDevice.objects.filter(
                item_id=self.item.pk, overuse=True, slot_start__gte=self.start, slot_start__lt=self.end
            ).count()
        self._actual_rules()
        return self.result

    def _actual_rules(self) -> None:
        """The recorded rule of each actual refusal (reports' refusals are decisions too)."""
        rows = (
            Decision.objects.filter(
                item_id=self.item.pk,
                created_at__gte=self.start,
                created_at__lt=self.end,
                allowed=False,
                endpoint__in=(Decision.AUTHORIZE, Decision.OFFLINE, Decision.USAGE),
            )
            .exclude(rule="idempotency_conflict")
            .values("rule")
            .annotate(n=Count("id"))
            .values_list("rule", "n")
        )
        by_rule = Counter({rule: n for rule, n in rows})
        if by_rule:
            self.result.actual_per_rule = by_rule


def what_if(
    item: LicenseItem,
    *,
    start: datetime,
    end: datetime,
    changes: dict[str, Any],
    progress: Callable[[datetime], None] | None = None,
) -> dict[str, Any]:
    """The replay's figures as one JSON-able dict (the ``what_if`` command prints it)."""
    return Replay(item, start=start, end=end, changes=changes).run(progress=progress).as_dict()


def run_stored(run_id: int, *, now: Callable[[], datetime]) -> None:
    """Run a stored ``ReplayRun`` (the Celery task ``usage.run_replay``): its progress moves with
    the day the replay reached, its result or its error is kept. ``now`` is the clock, read when
    the run starts and ends. Claimed with a conditional update: a redelivered task runs it once."""
    from usage.models import ReplayRun

    if not ReplayRun.objects.filter(pk=run_id, status=ReplayRun.QUEUED).update(status=ReplayRun.RUNNING):
        return
    run = ReplayRun.objects.select_related("item__license").get(pk=run_id)
    span = (run.end - run.start).total_seconds() or 1.0

    def progress(at: datetime) -> None:
        percent = int(min(99, max(0, (at - run.start).total_seconds() * 100 // span)))
        ReplayRun.objects.filter(pk=run_id).update(progress=percent)

    try:
        result = what_if(run.item, start=run.start, end=run.end, changes=run.changes, progress=progress)
    except Exception as e:  # the page shows why; the worker keeps going
        ReplayRun.objects.filter(pk=run_id).update(status=ReplayRun.FAILED, error=str(e)[:500], finished_at=now())
        raise
    ReplayRun.objects.filter(pk=run_id).update(status=ReplayRun.DONE, progress=100, result=result, finished_at=now())
