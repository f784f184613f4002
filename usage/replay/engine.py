"""The what-if replay of one item over a window (``usage.replay``, docs/insight.md): the state at
the window's start, then each recorded event in time order through the API's own verdicts."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Sum

from devices.models import OVERUSE_SPENT, Decision, Device
from devices.outcomes import DEVICE_NOT_AUTHORIZED, TERM_CODES
from devices.services import offline_active_until
from devices.verdicts import active_until_for, item_verdict, term_verdict
from licenses import rules
from licenses.models import LicenseItem
from usage.models import SlotDevice, UsageCount, UsageReport
from usage.replay.book import DEDUP_MARGIN_MS, ReplayDedup, ReplaySeats
from usage.replay.policy import REPLAYABLE, PolicyError, check_window, policy_item
from usage.replay.stream import CHUNK, SIGHTINGS_CHUNK, Event, Outcome, Result, decisions, reports
from usage.services import _usage_verdict, slot_verdict
from usage.sightings_store import unpack

SLOT_MEMORY = timedelta(days=30)  # SPEC section 6: a slot more than 30 days old is refused


@dataclass
class _ReplayReport:
    """What ``usage.services._usage_verdict`` reads of a report."""

    device: Device
    item: LicenseItem
    now: datetime
    pages: dict[str, int]
    slot_verdict: Any = None


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
        # A changed dedup interval: the stored sightings of each report are deduplicated again.
        self.dedup = ReplayDedup(self.policy.dedup_interval_ms) if "dedup_interval_ms" in changes else None
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
        if self.dedup is not None:
            self._seed_dedup()
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

    def _seed_dedup(self) -> None:
        """The dedup memory at the start: the sightings of the reports received within the
        interval plus ``DEDUP_MARGIN_MS`` before it, in the order they were received."""
        assert self.dedup is not None
        since = self.start - timedelta(milliseconds=max(self.item.dedup_interval_ms, self.dedup.interval_ms))
        rows = (
            UsageReport.objects.filter(
                item_id=self.item.pk,
                received_at__gte=since - timedelta(milliseconds=DEDUP_MARGIN_MS),
                received_at__lt=self.start,
            )
            .exclude(raw_sightings=None)
            .order_by("received_at", "id")
            .values_list("device__device_uuid", "raw_sightings")
        )
        for uuid, blob in rows.iterator(chunk_size=SIGHTINGS_CHUNK):
            if blob is not None:  # excluded above; typed as nullable
                self.dedup.count(uuid, unpack(blob)[1])

    def _counted(self, event: Event) -> dict[str, int]:
        """What the report counts under the policy: as recorded, or with its stored sightings
        deduplicated again (the SDK's own count, ``barcode_scans`` in the body, as sent)."""
        counted = event.counted
        if self.dedup is not None and event.sightings is not None:
            recorded, sightings = unpack(event.sightings)
            scans = counted.get("barcode_scans", 0) - recorded + self.dedup.count(event.device_uuid, sightings)
            counted = {m: n for m, n in counted.items() if m != "barcode_scans"}
            if scans:
                counted["barcode_scans"] = scans
            self.result.reports_deduplicated += 1
        if self.item.option == rules.PER_BARCODE_SCAN:
            self.result.actual_barcode_scans += event.counted.get("barcode_scans", 0)
            self.result.barcode_scans += counted.get("barcode_scans", 0)
        return counted

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
        counted = self._counted(event)
        for metric, n in counted.items():  # recorded whatever the answer (SPEC section 4)
            if (item.option == rules.PER_BARCODE_SCAN and metric == "barcode_scans") or (
                item.option == rules.PER_PAGE and metric.startswith("pages_")
            ):
                self.counters[metric] = self.counters.get(metric, 0) + n
        holds = device.holds_seat(now)
        if not event.allowed and event.code in TERM_CODES and holds:
            return Outcome(event, False, event.code, "term", counted=counted)  # the status at the time
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
        return Outcome(event, verdict.allowed, verdict.code, verdict.rule, without_seat=without_seat, counted=counted)

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
        streams = [
            decisions(self.item, self.start, self.end),
            reports(self.item, self.start, self.end, sightings=self.dedup is not None),
        ]
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
