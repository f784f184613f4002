"""The two email jobs of SPEC section 8: usage alerts and renewal reminders.

Each alert threshold and each reminder is claimed with ``INSERT ... ON CONFLICT DO NOTHING
RETURNING`` on its unique constraint, in the same transaction as the email: sent once, and a send
that fails rolls its claim back so the next run retries it."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string

from devices import quota
from devices.models import OVERUSE_SPENT, Device, holding_seat_sql
from licenses import rules
from licenses.events import emit, license_data
from licenses.models import (
    AlertRecipient,
    License,
    LicenseItem,
    Membership,
    Organization,
    effective_overuse_budget_sql,
)
from usage.models import AlertSent, ReminderSent
from usage.sql import claim as _claim
from usage.sql import fetchall as _fetchall
from usage.sql import json_int_sql as _json_int_sql
from usage.sql import table as _t

logger = logging.getLogger(__name__)

ALERT_THRESHOLDS = (60, 80, 100)
REMINDER_DAYS = (90, 60, 30, 14, 7, 0)
ALERT_KIND_LABELS = {
    "barcode_scans": "barcode scans",
    "pages_core": "pages (core)",
    "pages_webcam": "pages (webcam)",
    "pages_pdfr": "pages (PDF rasterizer)",
    "pages_ocr": "pages (OCR)",
    "seats": "seats",
    "overuse": "overuse budget (device-slots)",
}


# --- emails ------------------------------------------------------------------------------------


def recipients_of(organization_id: str) -> list[str]:
    """The organization's alert recipients, or its active owners' emails when it has none."""
    emails = list(
        AlertRecipient.objects.filter(organization_id=organization_id).order_by("email").values_list("email", flat=True)
    )
    if emails:
        return emails
    owners = get_user_model().objects.filter(
        memberships__organization_id=organization_id, memberships__role=Membership.OWNER, is_active=True
    )
    return sorted(set(owners.exclude(email="").values_list("email", flat=True)))


def _send(template: str, context: dict, to: list[str]) -> None:
    context = {**context, "base_url": settings.BASE_URL}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to)
    message.attach_alternative(html, "text/html")
    message.send()


# --- send_usage_alerts -------------------------------------------------------------------------


def _alert_candidates_sql() -> str:
    """Items of licenses in term whose usage crossed a threshold not yet alerted:
    (organization_id, item_id, kind, threshold, used, limit)."""
    item, counter, device, lic, alert = (
        _t(LicenseItem),
        quota.totals_table_sql(),  # each counter with its total (devices.quota)
        _t(Device),
        _t(License),
        _t(AlertSent),
    )
    pages_limit = _json_int_sql("i.quantities", "substr(qc.metric, 7)")
    thresholds = " UNION ALL ".join(f"SELECT {int(t)} AS threshold" for t in ALERT_THRESHOLDS)
    return f"""
        SELECT l.organization_id, u.item_id, u.kind, t.threshold, u.used, u.lim
        FROM (
            SELECT qc.item_id, qc.metric AS kind, qc.used, i.quantity AS lim
            FROM {counter} qc JOIN {item} i ON i.id = qc.item_id
            WHERE i.option = %s AND qc.metric = 'barcode_scans'
            UNION ALL
            SELECT qc.item_id, qc.metric, qc.used, {pages_limit}
            FROM {counter} qc JOIN {item} i ON i.id = qc.item_id
            WHERE i.option = %s AND qc.metric IN ('pages_core', 'pages_webcam', 'pages_pdfr', 'pages_ocr')
            UNION ALL
            SELECT d.item_id, 'seats', COUNT(*), i.quantity
            FROM {device} d JOIN {item} i ON i.id = d.item_id
            WHERE i.option IN (%s, %s) AND {holding_seat_sql("d")}
            GROUP BY d.item_id, i.quantity
            UNION ALL
            SELECT qc.item_id, 'overuse', qc.used, {effective_overuse_budget_sql("i")}
            FROM {counter} qc JOIN {item} i ON i.id = qc.item_id
            WHERE i.option = %s AND qc.metric = %s
        ) u
        JOIN {item} i ON i.id = u.item_id
        JOIN {lic} l ON l.id = i.license_id
        CROSS JOIN ({thresholds}) t
        WHERE l.status = %s AND l.starts_at <= %s AND l.expires_at > %s
          AND u.lim > 0 AND u.used * 100 >= CAST(u.lim AS BIGINT) * t.threshold
          AND NOT EXISTS (
              SELECT 1 FROM {alert} a WHERE a.item_id = u.item_id AND a.kind = u.kind AND a.threshold = t.threshold
          )
        ORDER BY l.organization_id, u.item_id, u.kind, t.threshold
    """


def send_usage_alerts(*, now: datetime) -> dict:
    """One email per organization per run, listing each item that newly crossed 60, 80 or 100 %
    of its quota (scans; pages per module), seats, or overuse budget. Each threshold of an item
    is claimed once (``AlertSent``), in the transaction that sends the organization's email."""
    rows = _fetchall(
        _alert_candidates_sql(),
        [
            rules.PER_BARCODE_SCAN,
            rules.PER_PAGE,
            rules.PER_CLIENT_DEVICE,
            rules.PER_SERVER,
            now,
            rules.PER_CONCURRENT_DEVICE,
            OVERUSE_SPENT,
            License.ACTIVE,
            now,
            now,
        ],
    )
    by_org: dict[str, list[tuple]] = defaultdict(list)
    for org_id, item_id, kind, threshold, used, lim in rows:
        by_org[org_id].append((item_id, kind, threshold, int(used), int(lim)))
    emails = alerts = unsent = failed = 0
    for org_id, candidates in by_org.items():
        try:
            with transaction.atomic():
                claimed = set(
                    _claim(
                        AlertSent,
                        ["item_id", "kind", "threshold", "sent_at"],
                        ["item_id", "kind", "threshold"],
                        [(item_id, kind, threshold, now) for item_id, kind, threshold, _, _ in candidates],
                    )
                )
                if not claimed:
                    continue  # another copy of this run got there first
                lines = _alert_lines(candidates, claimed)
                alerts += len(claimed)
                _emit_crossings(org_id, candidates, claimed, now=now)
                to = recipients_of(org_id)
                if not to:
                    unsent += 1
                    logger.warning("usage alert for organization %s: no recipient", org_id)
                    continue
                organization = Organization.objects.get(pk=org_id)
                _send("usage_alert", {"organization": organization, "lines": lines, "now": now}, to)
                emails += 1
        except Exception:
            # The claims rolled back with the transaction: the next run retries this organization.
            failed += 1
            logger.exception("usage alert for organization %s failed", org_id)
    from usage.refusal_alerts import send_refusal_alerts

    refused = send_refusal_alerts(now=now)  # failed-authorization alerts are part of this job
    return {
        "job": "send_usage_alerts",
        "emails": emails,
        "alerts": alerts,
        "no_recipient": unsent,
        "failed": failed,
        "refusal_emails": refused["emails"],
        "refusal_alerts": refused["alerts"],
        "refusal_failed": refused["failed"],
    }


# usage.threshold_crossed's metric (SPEC 14) for each alert kind.
EVENT_METRICS = {"overuse": "overuse_budget"}


def _emit_crossings(org_id: str, candidates: list[tuple], claimed: set[tuple], *, now: datetime) -> None:
    """One ``usage.threshold_crossed`` event per threshold this run claimed: the same crossings
    the email reports, in its transaction."""
    items = LicenseItem.objects.select_related("project").in_bulk({c[0] for c in candidates})
    for item_id, kind, threshold, used, lim in candidates:
        if (item_id, kind, threshold) not in claimed:
            continue
        item = items[item_id]
        metric = "servers" if kind == "seats" and item.option == rules.PER_SERVER else EVENT_METRICS.get(kind, kind)
        data = {
            "organization": org_id,
            "project": {"id": str(item.project_id), "name": item.project.name},
            "item": str(item_id),
            "metric": metric,
            "threshold": threshold,
            "used": used,
            "quantity": lim,
        }
        emit("usage.threshold_crossed", data, organization=org_id, now=now)


def _alert_lines(candidates: list[tuple], claimed: set[tuple]) -> list[dict]:
    """One line per (item, kind) with the highest threshold this run claimed."""
    best: dict[tuple, tuple] = {}
    for item_id, kind, threshold, used, lim in candidates:
        if (item_id, kind, threshold) in claimed and threshold >= best.get((item_id, kind), (0,))[0]:
            best[(item_id, kind)] = (threshold, used, lim)
    items = LicenseItem.objects.select_related("license", "project").in_bulk({k[0] for k in best})
    lines = []
    for (item_id, kind), (threshold, used, lim) in sorted(best.items()):
        lines.append(
            {
                "item": items[item_id],
                "kind": kind,
                "kind_label": ALERT_KIND_LABELS.get(kind, kind),
                "threshold": threshold,
                "used": used,
                "limit": lim,
                "percent": used * 100 // lim,
            }
        )
    return lines


# --- send_renewal_reminders --------------------------------------------------------------------


def send_renewal_reminders(*, now: datetime) -> dict:
    """Reminders 90, 60, 30, 14 and 7 days before expiry and on the day, by UTC dates, once each
    per license (``ReminderSent``). A license is due the reminder of the smallest threshold at or
    above its days left, so a day the job did not run is caught up the next day, and a license
    issued 20 days before expiry gets the 30-day reminder. Licenses renewed by an active license
    that runs longer get none."""
    utc_now = now.astimezone(UTC)
    today = datetime(utc_now.year, utc_now.month, utc_now.day, tzinfo=UTC)
    renewed = License.objects.filter(
        renewal_of=OuterRef("pk"), status=License.ACTIVE, expires_at__gt=OuterRef("expires_at")
    )
    sent = failed = unsent = 0
    thresholds = sorted(REMINDER_DAYS)  # 0, 7, 14, ...
    for index, days in enumerate(thresholds):
        lower = thresholds[index - 1] + 1 if index else 0  # days left in [lower, days]
        due = (
            License.objects.filter(
                status=License.ACTIVE,
                expires_at__gte=today + timedelta(days=lower),
                expires_at__lt=today + timedelta(days=days + 1),
            )
            .exclude(Exists(ReminderSent.objects.filter(license=OuterRef("pk"), days_before=days)))
            .exclude(Exists(renewed))
            .select_related("organization")
            .order_by("expires_at", "id")
        )
        for lic in due.iterator(chunk_size=500):
            try:
                with transaction.atomic():
                    if not _claim(
                        ReminderSent,
                        ["license_id", "days_before", "sent_at"],
                        ["license_id", "days_before"],
                        [(lic.pk, days, now)],
                    ):
                        continue
                    expires_on = lic.expires_at.astimezone(UTC).date()
                    emit(  # SPEC 14, with the email's claim
                        "license.expiring",
                        {**license_data(lic), "days_left": (expires_on - today.date()).days},
                        organization=lic.organization_id,
                        now=now,
                    )
                    to = recipients_of(lic.organization_id)
                    if not to:
                        unsent += 1
                        logger.warning("renewal reminder for %s: no recipient", lic.license_id)
                        continue
                    expires_day = lic.expires_at.astimezone(UTC).date()
                    context = {
                        "license": lic,
                        "organization": lic.organization,
                        "days_left": (expires_day - today.date()).days,
                        "reminder_days": days,
                        "expired": lic.expires_at <= now,
                        "items": list(lic.items.select_related("project").order_by("id")),
                        "now": now,
                    }
                    _send("renewal_reminder", context, to)
                    sent += 1
            except Exception:
                failed += 1
                logger.exception("renewal reminder for %s failed", lic.license_id)
    return {"job": "send_renewal_reminders", "emails": sent, "no_recipient": unsent, "failed": failed}
