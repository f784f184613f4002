"""Usage reports (SPEC sections 4 and 6): recorded once, counted in their slot, never lost.

A report is stored under the unique ``(device, report_id)``: a retry with the same body replays the
first answer with ``"status": "duplicate"`` and counts nothing; a different body is a 409. Reports
of one device are serialized by locking the device row; the unique constraint is the backstop
(an insert that loses the race rolls back its savepoint and replays the winner's answer).

A well-formed report from an authorized device is always recorded, whatever the limits: from a
device that lost its seat (answered ``allowed: false``, code 4, without refreshing it), for a
suspended or expired item (113/111), past a quota (120). Quotas are checked after recording.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from devices.models import OVERUSE_SPENT, Decision, Device, QuotaCounter
from devices.outcomes import DEVICE_NOT_AUTHORIZED, IDEMPOTENCY_CONFLICT, TERM_CODES, Refusal, Verdict, error_detail
from devices.services import (
    active_until_for,
    local_license,
    lock_item,
    never_authorized,
    overuse_counts,
    project_for_request,
    quota_verdict,
    record_decision,
    remaining,
    term_verdict,
)
from licenses import rules
from licenses.clock import rfc3339, slot_start_problem
from licenses.models import LicenseItem
from usage.dedup import Sighting, dedup_sightings
from usage.models import SlotDevice, UsageCount, UsageReport


def body_hash(canonical: dict) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def add_to_counter(item: LicenseItem, metric: str, n: int) -> None:
    """``used += n`` in the database (row-locked by the UPDATE until commit)."""
    QuotaCounter.objects.bulk_create([QuotaCounter(item=item, metric=metric, used=0)], ignore_conflicts=True)
    QuotaCounter.objects.filter(item=item, metric=metric).update(used=F("used") + n)


def record_usage(*, data, now: datetime) -> dict[str, Any]:
    """Record a usage report (SPEC section 6, ``data``: a validated ``api.schemas.UsageRequest``):
    the answer's body, or a ``Refusal``."""
    problem = slot_start_problem(data.slot_start, now=now)
    if problem:
        raise Refusal(1, f"slot_start {problem}", fields={"slot_start": problem})
    project = project_for_request(data, endpoint=Decision.USAGE, now=now)  # 101, then 102
    device = Device.objects.filter(project=project, device_uuid=data.device_uuid).first()
    if device is None or device.item_id is None:
        raise never_authorized(project=project, endpoint=Decision.USAGE, device_uuid=data.device_uuid, now=now)
    digest = body_hash(data.canonical())
    answer = _record(project, device, data, digest, now=now)
    if isinstance(answer, Refusal):
        raise answer
    return answer


def _record(project, device: Device, data, digest: str, *, now: datetime) -> dict[str, Any] | Refusal:
    with transaction.atomic():
        device = Device.objects.select_for_update(of=("self",)).select_related("item__license").get(pk=device.pk)
        existing = UsageReport.objects.filter(device=device, report_id=data.report_id).first()
        if existing is not None:
            return _replay(project, device, existing, digest, now=now)
        report = UsageReport(
            device=device,
            report_id=data.report_id,
            item=device.item,
            slot_start=data.slot_start,
            body_hash=digest,
            counted={},
            allowed=False,
            response={},
            received_at=now,
        )
        try:
            with transaction.atomic():  # a savepoint: the unique (device, report_id) decides a race
                report.save(force_insert=True)
        except IntegrityError:
            existing = UsageReport.objects.get(device=device, report_id=data.report_id)
            return _replay(project, device, existing, digest, now=now)
        return _count_and_answer(project, device, report, data, now=now)


def _replay(project, device: Device, existing: UsageReport, digest: str, *, now: datetime) -> dict[str, Any] | Refusal:
    """The first answer again, or the 409 refusal: returned, not raised, so that the decision it
    records commits with the transaction it runs in."""
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
    verdict = Verdict(existing.item, existing.allowed, "duplicate_report", "a retry: the first answer, counted once")
    record_decision(
        project=project,
        endpoint=Decision.USAGE,
        verdict=verdict,
        now=now,
        device=device,
        device_uuid=device.device_uuid,
    )
    return body


def _count_and_answer(project, device: Device, report: UsageReport, data, *, now: datetime) -> dict[str, Any]:
    item: LicenseItem = device.item
    sightings = [Sighting(s.ts_ms, s.frame, s.format, s.text) for s in data.sightings]
    scans = data.barcode_scans + dedup_sightings(
        device=device, sightings=sightings, interval_ms=item.dedup_interval_ms, now=now
    )
    pages = {m: n for m, n in sorted(data.pages.items()) if n}
    metrics = {"barcode_scans": scans} if scans else {}
    metrics.update({f"pages_{m}": n for m, n in pages.items()})
    UsageCount.objects.bulk_create(
        [
            UsageCount(report=report, item=item, slot_start=report.slot_start, metric=m, count=n)
            for m, n in metrics.items()
        ]
    )
    if item.option == rules.PER_BARCODE_SCAN and scans:
        add_to_counter(item, "barcode_scans", scans)
    if item.option == rules.PER_PAGE:
        for module, n in pages.items():
            add_to_counter(item, f"pages_{module}", n)
    # Activity for concurrency: the device reported something non-zero in this slot (a barcode
    # held in view still counts as activity even when dedup counts it zero).
    active = bool(data.barcode_scans or data.sightings or pages)

    verdict = _usage_verdict(device, item, report, pages=pages, active=active, now=now)
    if verdict.code != DEVICE_NOT_AUTHORIZED and verdict.code not in TERM_CODES:
        # A contact from a device holding its seat on a usable item refreshes it.
        device.last_seen_at = now
        device.active_until = active_until_for(item, now=now)
        update = ["last_seen_at", "active_until"]
        if device.first_used_at is None:
            device.first_used_at = now
            update.append("first_used_at")
        device.save(update_fields=update)

    counters = dict(QuotaCounter.objects.filter(item=item).values_list("metric", "used"))
    left = remaining(item, now=now, counters=counters)
    body: dict[str, Any] = {
        "status": "accepted",
        "allowed": verdict.allowed,
        "counted": {"barcode_scans": scans, "pages": pages},
        "active_until": rfc3339(device.active_until),
        "remaining": left,
    }
    if verdict.allowed:
        body["local_license"] = local_license(project=project, device=device, item=item, remaining=left, now=now)
    else:
        body["error"] = error_detail(verdict.code, verdict.message)
    report.counted = metrics
    report.allowed = verdict.allowed
    report.response = body
    report.save(update_fields=["counted", "allowed", "response"])
    record_decision(
        project=project,
        endpoint=Decision.USAGE,
        verdict=verdict,
        now=now,
        device=device,
        device_uuid=device.device_uuid,
    )
    return body


def _usage_verdict(
    device: Device, item: LicenseItem, report: UsageReport, *, pages: dict[str, int], active: bool, now: datetime
) -> Verdict:
    if device.state != Device.ACTIVE or device.active_until <= now:
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
        counters = dict(QuotaCounter.objects.filter(item=item).values_list("metric", "used"))
        return quota_verdict(item, counters, modules=set(pages) if item.option == rules.PER_PAGE else None)
    if item.option == rules.PER_CONCURRENT_DEVICE and active:
        return admit_to_slot(item, device, report.slot_start)
    return Verdict(item, True, "contact", counts={})


def admit_to_slot(item: LicenseItem, device: Device, slot_start: datetime) -> Verdict:
    """Count the device in the slot of a per_concurrent_device item, within the quantity, or
    above it up to the overuse ceiling while the budget lasts; the item row is locked first."""
    lock_item(item)
    slot = rfc3339(slot_start)
    counts = overuse_counts(item)
    in_slot = SlotDevice.objects.filter(item=item, slot_start=slot_start)
    n = in_slot.count()
    counts.update({"slot": slot, "active": n})
    if in_slot.filter(device=device).exists():
        return Verdict(item, True, "slot_already_counted", counts=counts)
    if n < item.quantity:
        SlotDevice.objects.create(item=item, slot_start=slot_start, device=device, overuse=False)
        counts["active"] = n + 1
        return Verdict(item, True, "slot_within_quantity", counts=counts)
    if n < counts["ceiling"] and counts["spent"] < counts["budget"]:
        SlotDevice.objects.create(item=item, slot_start=slot_start, device=device, overuse=True)
        add_to_counter(item, OVERUSE_SPENT, 1)
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
