"""Usage reports (SPEC sections 4 and 6): recorded once, counted in their slot, never lost.

A report is stored under the unique ``(device, report_id)``: a retry with the same body replays
the first answer with ``"status": "duplicate"`` and counts nothing; a different body is a 409.

A well-formed report from an authorized device is always recorded, whatever the limits: from a
device that lost its seat (answered ``allowed: false``, code 4, without refreshing it), for a
suspended or expired item (113/111), past a quota (120). Quotas are checked after recording.

The hot path (``usage.hot_sql``), one transaction and at most four statements for a scan or
page report without sightings:

1. one read, before the transaction: device, project, item, license, the item's counters, the
   seats it holds, an earlier report with this ``report_id`` (a replay ends here);
2. the device's refresh, a conditional ``UPDATE`` (it also serializes the reports of one device,
   which the dedup memory of sightings needs: with sightings, the memory is read and written
   next);
3. the report with its answer and its counts, one insert; the answer is built and its local
   license signed before the transaction, from the counters as read plus this report;
4. the counters, one upsert returning the new totals, last before the commit. When the totals
   say otherwise than the answer (another report moved the counter in between and the limit was
   crossed), the answer is decided again on the totals and the report's answer rewritten in the
   same transaction: each report sees the total including itself, as SPEC section 4 says.

A duplicate that arrives at the same moment inserts nothing: the insert is conditional on no
report of the device having this ``report_id`` (on PostgreSQL the unique index holds the slot,
the partition key: ``usage.partitions``), checked after the device row is locked; its
transaction (counters included) rolls back and it replays the winner's answer.

Decisions: every refusal (seat lost, term, quota, slot ceiling, overuse budget spent, 409) is a
``Decision`` row, and so is a report admitted on the overuse budget; a routine allowed report
is not: its ``UsageReport`` (``allowed``, ``counted``, ``response``) is its record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from devices.models import OVERUSE_SPENT, Decision, Device, QuotaCounter
from devices.outcomes import DEVICE_NOT_AUTHORIZED, IDEMPOTENCY_CONFLICT, Refusal, Verdict, error_detail
from devices.quota import ExactWayFirst, shard_of
from devices.services import local_license, never_authorized, project_for_request, record_decision
from devices.verdicts import (
    active_until_for,
    counter_values,
    lock_item,
    overuse_counts,
    quota_limits,
    quota_verdict,
    remaining,
    term_verdict,
)
from licenses import rules
from licenses.clock import rfc3339, slot_start_problem
from licenses.models import LicenseItem
from usage.dedup import Sighting, dedup_sightings
from usage.hot_sql import add_to_counters, insert_report, read_request, refresh_device, update_answer
from usage.models import SlotDevice, UsageReport
from usage.sightings_store import pack


def body_hash(canonical: dict) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def add_to_counter(item: LicenseItem, metric: str, n: int) -> None:
    """``used += n`` in the database (row-locked by the UPDATE until commit)."""
    QuotaCounter.objects.bulk_create([QuotaCounter(item=item, metric=metric, used=0)], ignore_conflicts=True)
    QuotaCounter.objects.filter(item=item, metric=metric).update(used=F("used") + n)


def record_usage(*, data, now: datetime) -> dict[str, Any]:
    """Record a usage report (SPEC section 6, ``data``: a validated ``api.schemas.UsageRequest``):
    the answer's body, or a ``Refusal``. One transaction: a refusal is returned out of it (its
    decision committed) and raised after."""
    problem = slot_start_problem(data.slot_start, now=now)
    if problem:
        raise Refusal(1, f"slot_start {problem}", fields={"slot_start": problem})
    digest = body_hash(data.canonical())
    attempt, exact = 0, False
    while True:
        try:
            with transaction.atomic():
                # The first read looks for a retry in its own slot only (usage.hot_sql.read_request).
                answer = _handle(data, digest, now=now, pinned=attempt == 0, exact=exact)
            break
        except ExactWayFirst:
            exact = True  # the report did not fit its share of the counter: again, the exact way
        except IntegrityError:
            # The same report_id committed by another request since the read (the next read
            # replays its answer), or the device lost its seat since the read (_Changed).
            attempt += 1
            if attempt == 3:
                raise
    if isinstance(answer, Refusal):
        raise answer
    return answer


def _handle(data, digest: str, *, now: datetime, pinned: bool = False, exact: bool = False) -> dict[str, Any] | Refusal:
    device = read_request(
        license_key=data.license_key,
        device_uuid=data.device_uuid,
        report_id=data.report_id,
        now=now,
        slot_start=data.slot_start if pinned else None,
    )
    if device is None or not _project_passes(device.project, data, now=now):
        try:  # 101, then 102, recorded as ever; a known key: 4
            project = project_for_request(data, endpoint=Decision.USAGE, now=now)
        except Refusal as refusal:
            return refusal
        return never_authorized(project=project, endpoint=Decision.USAGE, device_uuid=data.device_uuid, now=now)
    if device.item_id is None:
        return never_authorized(project=device.project, endpoint=Decision.USAGE, device_uuid=data.device_uuid, now=now)
    earlier_pk = device._earlier_report  # type: ignore[attr-defined]  # read by read_request
    if earlier_pk is not None:
        # Found in this slot by the first read: its partition only (usage.partitions).
        in_slot = {"slot_start": data.slot_start} if pinned else {}
        earlier = UsageReport.objects.select_related("item").get(pk=earlier_pk, **in_slot)
        return _replay(device.project, device, earlier, digest, now=now)
    return _record(device.project, device, data, digest, now=now, exact=exact)


def _project_passes(project, data, *, now: datetime) -> bool:
    """The key (current, or the previous one within its grace) and the session password pass."""
    from devices.protection import session_password_verdict
    from licenses.keys import previous_key_valid

    if project.license_key != data.license_key and not previous_key_valid(project, now):
        return False
    return session_password_verdict(project, getattr(data, "session_password", None)) is None


def _replay(project, device: Device, existing: UsageReport, digest: str, *, now: datetime) -> dict[str, Any] | Refusal:
    """The first answer again (no decision: the first report is the record), or the 409 refusal
    (recorded)."""
    if existing.body_hash != digest:
        message = f"report_id {existing.report_id!r} was already used with a different body"
        verdict = Verdict(existing.item, False, "idempotency_conflict", message, code=IDEMPOTENCY_CONFLICT)
        record_decision(
            project=project,
            endpoint=Decision.USAGE,
            verdict=verdict,
            now=now,
            device=device,
            device_uuid=device.device_uuid,
        )
        return Refusal.of(verdict)
    body = dict(existing.response)
    body["status"] = "duplicate"
    return body


class _Report:
    """What one report counts and how it is answered, built up by ``_record``."""

    def __init__(self, device: Device, data, *, now: datetime) -> None:
        self.device, self.data, self.now = device, data, now
        assert device.item is not None  # a device that reports was bound to an item
        self.item: LicenseItem = device.item
        self.pages = {m: n for m, n in sorted(data.pages.items()) if n}
        self.scans = data.barcode_scans
        # Activity for concurrency: the device reported something non-zero in this slot (a barcode
        # held in view still counts as activity even when dedup counts it zero).
        self.active = bool(data.barcode_scans or data.sightings or self.pages)
        self.refresh = False
        self.slot_verdict: Verdict | None = None

    @property
    def metrics(self) -> dict[str, int]:
        metrics = {"barcode_scans": self.scans} if self.scans else {}
        metrics.update({f"pages_{m}": n for m, n in self.pages.items()})
        return metrics

    @property
    def quota_amounts(self) -> dict[str, int]:
        """What this report adds to the item's quota counters."""
        if self.item.option == rules.PER_BARCODE_SCAN:
            return {"barcode_scans": self.scans} if self.scans else {}
        if self.item.option == rules.PER_PAGE:
            return {f"pages_{m}": n for m, n in self.pages.items()}
        return {}

    def counters_after(self, totals: dict[str, int] | None = None) -> dict[str, int]:
        """The item's counters with this report in: as read plus its amounts, or the totals
        the upsert returned (metrics it did not touch as read)."""
        counters = dict(self.device._counters)  # type: ignore[attr-defined]  # read by read_request
        if totals is None:
            for metric, n in self.quota_amounts.items():
                counters[metric] = counters.get(metric, 0) + n
        else:
            counters.update(totals)
        return counters

    def verdict(self, counters: dict[str, int]) -> Verdict:
        return _usage_verdict(self, counters)

    def answer(self, verdict: Verdict, counters: dict[str, int], project) -> dict[str, Any]:
        device, item, now = self.device, self.item, self.now
        held = device._seats_held  # type: ignore[attr-defined]  # read by read_request
        left = remaining(item, now=now, counters=counters, seats_held=held)
        body: dict[str, Any] = {
            "status": "accepted",
            "allowed": verdict.allowed,
            "counted": {"barcode_scans": self.scans, "pages": self.pages},
            "active_until": rfc3339(device.active_until),
            "remaining": left,
        }
        if verdict.allowed:
            body["local_license"] = local_license(project=project, device=device, item=item, remaining=left, now=now)
        else:
            assert verdict.code is not None
            body["error"] = error_detail(verdict.code, verdict.message)
        return body


def _record(
    project, device: Device, data, digest: str, *, now: datetime, exact: bool = False
) -> dict[str, Any] | Refusal:
    report = _Report(device, data, now=now)
    item = report.item
    holds = device.holds_seat(now)
    usable = term_verdict(item, now=now) is None
    sightings = [Sighting(s.ts_ms, s.frame, s.format, s.text) for s in data.sightings]
    # The answer before any row is locked when nothing but the counters can change it.
    early = not sightings and not (item.option == rules.PER_CONCURRENT_DEVICE and report.active and holds and usable)
    if holds and usable:
        # A contact from a device holding its seat on a usable item refreshes it (written below);
        # an offline registration holds its seat to its token's exp, whatever it sends (SPEC 12).
        report.refresh = True
        device.last_seen_at = now
        if not device.offline:
            device.active_until = active_until_for(item, now=now)
    planned = None
    if early:  # built and signed before any row is locked
        counters = report.counters_after()
        verdict = report.verdict(counters)
        planned = (verdict, report.answer(verdict, counters, project))
    if report.refresh:
        # False: released or expired since the read, a device that lost its seat.
        if not refresh_device(device.pk, now=now, active_until=device.active_until):
            raise _Changed()
    else:
        # Locked all the same: the dedup memory of sightings needs the reports of one device in
        # turn, and so does the report_id check of insert_report.
        list(Device.objects.select_for_update().filter(pk=device.pk).values_list("pk", flat=True))
    raw_sightings = None
    if sightings:
        deduplicated = dedup_sightings(device=device, sightings=sightings, interval_ms=item.dedup_interval_ms, now=now)
        report.scans += deduplicated
        raw_sightings = pack(sightings, counted=deduplicated)  # for a what-if with another interval
    if planned is None:
        if item.option == rules.PER_CONCURRENT_DEVICE and report.active and holds and usable:
            report.slot_verdict = admit_to_slot(item, device, data.slot_start)
        counters = report.counters_after()
        verdict = report.verdict(counters)
        planned = (verdict, report.answer(verdict, counters, project))
    verdict, body = planned
    pk = insert_report(
        device_id=device.pk,
        report_id=data.report_id,
        item_id=item.pk,
        slot_start=data.slot_start,
        body_hash=digest,
        counted=report.metrics,
        allowed=verdict.allowed,
        response=body,
        received_at=now,
        raw_sightings=raw_sightings,
    )
    totals = add_to_counters(
        item.pk,
        report.quota_amounts,
        shard=shard_of(device.pk),
        limits=quota_limits(item),
        predicted=report.counters_after(),
        share=device._share,  # type: ignore[attr-defined]  # read by read_request
        exact=exact,
    )
    if totals:
        counters = report.counters_after(totals)
        final = report.verdict(counters)
        if (final.allowed, final.code, final.rule) != (verdict.allowed, verdict.code, verdict.rule):
            # Another report moved the counter in between: this one is decided on the total
            # including itself (SPEC section 4), its stored answer with it.
            verdict, body = final, report.answer(final, counters, project)
            update_answer(pk, slot_start=data.slot_start, allowed=verdict.allowed, response=body)
    if not verdict.allowed or verdict.rule == "slot_overuse":
        record_decision(
            project=project,
            endpoint=Decision.USAGE,
            verdict=verdict,
            now=now,
            device=device,
            device_uuid=device.device_uuid,
        )
    return body


class _Changed(IntegrityError):
    """The device lost its seat between the read and the refresh: the report is read again."""


def _usage_verdict(report: _Report, counters: dict[str, int]) -> Verdict:
    """Seat lost (4), then the item's term (111/112/113), then its quota (checked on the
    counters with this report in) or its slot admission; else a plain contact."""
    device, item, now = report.device, report.item, report.now
    if not device.holds_seat(now):
        how = "was released" if device.state == Device.RELEASED else "has expired"
        message = f"the device's authorization {how}: authorize again (usage recorded)"
        return Verdict(
            item,
            False,
            "seat_lost",
            message,
            code=DEVICE_NOT_AUTHORIZED,
            counts={"active_until": rfc3339(device.active_until)},
        )
    refusal = term_verdict(item, now=now)
    if refusal is not None:
        refusal.message += " (usage recorded)"
        return refusal
    if item.option in (rules.PER_BARCODE_SCAN, rules.PER_PAGE):
        modules = set(report.pages) if item.option == rules.PER_PAGE else None
        return quota_verdict(item, counters, modules=modules)
    if report.slot_verdict is not None:
        return report.slot_verdict
    return Verdict(item, True, "contact", counts={})


def admit_to_slot(item: LicenseItem, device: Device, slot_start: datetime) -> Verdict:
    """Count the device in the slot of a per_concurrent_device item, within the quantity, or
    above it up to the overuse ceiling while the budget lasts; the item row is locked first."""
    lock_item(item)
    in_slot = SlotDevice.objects.filter(item=item, slot_start=slot_start)
    verdict = slot_verdict(
        item,
        slot_start=slot_start,
        active=in_slot.count(),
        counted=in_slot.filter(device=device).exists(),
        counters=counter_values(item),
    )
    if verdict.rule in ("slot_within_quantity", "slot_overuse"):
        SlotDevice.objects.create(
            item=item, slot_start=slot_start, device=device, overuse=verdict.rule == "slot_overuse"
        )
    if verdict.rule == "slot_overuse":
        add_to_counter(item, OVERUSE_SPENT, 1)
    return verdict


def slot_verdict(
    item: LicenseItem, *, slot_start: datetime, active: int, counted: bool, counters: dict[str, int]
) -> Verdict:
    """SPEC section 4, per_concurrent_device: whether a device with a non-zero report is counted
    in a slot that already counts ``active`` devices (``counted``: it is one of them), within the
    quantity, on the overuse budget (``counters``: the item's, overuse spent) up to the ceiling,
    or refused. Reads and writes nothing: ``admit_to_slot`` writes what it says, and a what-if
    replay (``usage.replay``) keeps its slots in memory."""
    slot = rfc3339(slot_start)
    counts: dict[str, Any] = dict(overuse_counts(item, counters))
    n = active
    counts.update({"slot": slot, "active": n})
    if counted:
        return Verdict(item, True, "slot_already_counted", counts=counts)
    if n < counts["quantity"]:
        counts["active"] = n + 1
        return Verdict(item, True, "slot_within_quantity", counts=counts)
    if n < counts["ceiling"] and counts["spent"] < counts["budget"]:
        counts.update({"active": n + 1, "spent": counts["spent"] + 1})
        return Verdict(item, True, "slot_overuse", counts=counts)
    if n >= counts["ceiling"]:
        message = (
            f"{n} devices are active in slot {slot}: the limit is {item.quantity} "
            f"and the overuse ceiling {counts['ceiling']}"
        )
        return Verdict(item, False, "slot_ceiling_reached", message, code=120, counts=counts)
    message = f"the overuse budget is spent ({counts['spent']} of {counts['budget']} device-slots)"
    return Verdict(item, False, "overuse_budget_spent", message, code=120, counts=counts)
