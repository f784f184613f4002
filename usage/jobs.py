"""The scheduled jobs of SPEC section 8, one service per job name.

Each takes ``now`` (only entry points read the clock) and returns a JSON-able summary. They are
set-based: one ``UPDATE ... WHERE``, ``INSERT ... SELECT ... ON CONFLICT`` with the aggregation
in the database, or deletes in batches by primary key; no job walks a big table in Python.

Safety (a job may run twice, two copies may run at once, a worker may die half way):

- ``expire_idle_devices`` is one conditional UPDATE: a second copy finds nothing left to do.
- The rollups recompute whole slots/buckets (never add to them) in one transaction that also
  moves the job's watermark (``JobState``); the job's ``JobState`` row is locked first, so two
  copies run one after the other and the second recomputes the same values. A run killed half
  way rolls back and the next run redoes the same window.
- Late reports: a report names the slot its usage happened in, so a report received now for an
  old slot re-rolls that slot and its bucket. The window of reports a run looks at starts
  ``LATE_COMMIT_MARGIN`` before the previous watermark, because ``received_at`` is read when a
  request starts and its transaction may commit a little later.
- Alerts and reminders are claimed with ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` on their
  unique constraints, in the same transaction as the email: each threshold is sent once; a send
  that fails rolls its claim back and the next run retries it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Exists, F, Max, Min, OuterRef
from django.template.loader import render_to_string

from devices.models import Decision, Device
from licenses import rules
from licenses.models import AlertRecipient, License, LicenseItem, Membership, Organization
from usage.models import (
    OVERUSE_SPENT,
    AlertSent,
    ConcurrencyRollup,
    JobState,
    QuotaCounter,
    ReminderSent,
    SightingMemory,
    SlotDevice,
    UsageCount,
    UsageReport,
    UsageRollup,
)

logger = logging.getLogger(__name__)

SLOT_SECONDS = 180
BUCKET_SECONDS = 2 * 3600
DAY_SECONDS = 86400
# How long after its received_at a report's transaction may still commit; each run re-reads
# reports received this long before the previous watermark.
LATE_COMMIT_MARGIN = timedelta(minutes=5)
# A report's slot may start at most this far after it is received (SPEC section 6).
MAX_FUTURE_SLOT = timedelta(minutes=5)
ALERT_THRESHOLDS = (60, 80, 100)
REMINDER_DAYS = (90, 60, 30, 14, 7, 0)
PURGE_BATCH = 10_000
# Dedup memory matters only while a sighting could still arrive within the dedup interval of it;
# reports may carry usage up to 30 days old (SPEC section 6), so keep memory that long too.
DEDUP_MEMORY_MARGIN = timedelta(days=31)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ALERT_KIND_LABELS = {
    "barcode_scans": "barcode scans",
    "pages_core": "pages (core)",
    "pages_webcam": "pages (webcam)",
    "pages_pdfr": "pages (PDF rasterizer)",
    "pages_ocr": "pages (OCR)",
    "seats": "seats",
    "overuse": "overuse budget (device-slots)",
}


# --- SQL helpers -------------------------------------------------------------------------------


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _p(value):
    """A parameter for raw SQL: datetimes in the form the backend stores (SQLite: naive UTC text)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _floor_sql(col: str, seconds: int, plus: int = 0) -> str:
    """SQL for the UTC-epoch-aligned start of the ``seconds`` long bucket holding ``col``
    (``plus`` seconds later). Both backends; literal % doubled for parameterised queries."""
    if connection.vendor == "postgresql":
        return f"to_timestamp(floor(extract(epoch from {col}) / {seconds}) * {seconds} + {plus})"
    return (
        f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', "
        f"(CAST(strftime('%%s', {col}) AS INTEGER) / {seconds}) * {seconds} + {plus}, 'unixepoch')"
    )


def _json_int_sql(col: str, key_sql: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(({col} ->> {key_sql}) AS bigint)"
    return f"CAST(json_extract({col}, '$.' || {key_sql}) AS INTEGER)"


def _execute(sql: str, params: Sequence = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, [_p(v) for v in params])
        return max(cursor.rowcount, 0)


def _fetchall(sql: str, params: Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [_p(v) for v in params])
        return cursor.fetchall()


def _claim(model, columns: Sequence[str], conflict: Sequence[str], rows: Iterable[Sequence]) -> list[tuple]:
    """INSERT the rows, skipping those the unique constraint already holds; return the
    ``conflict`` columns of the rows this call inserted (its claims)."""
    rows = [list(r) for r in rows]
    if not rows:
        return []
    q = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {_t(model)} ({', '.join(q(c) for c in columns)}) VALUES "
        + ", ".join([placeholders] * len(rows))
        + f" ON CONFLICT ({', '.join(q(c) for c in conflict)}) DO NOTHING"
        + f" RETURNING {', '.join(q(c) for c in conflict)}"
    )
    return _fetchall(sql, [v for r in rows for v in r])


def _lock_job(name: str) -> JobState:
    """Lock the job's bookkeeping row for the current transaction: copies of a job run one at a
    time (on SQLite the IMMEDIATE transaction already serialises writers)."""
    JobState.objects.bulk_create([JobState(name=name)], ignore_conflicts=True)
    return JobState.objects.select_for_update().get(name=name)


def _window_start(state: JobState, now: datetime) -> datetime:
    """Reports received after this are (re)considered. A watermark in the future (a replay run
    with a later ``now``) must not hide reports received since."""
    if state.watermark is None:
        return EPOCH
    return min(state.watermark, now) - LATE_COMMIT_MARGIN


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


# --- expire_idle_devices -----------------------------------------------------------------------


def expire_idle_devices(*, now: datetime) -> dict:
    """Active devices and servers whose ``active_until`` has come become expired; their seat is
    free. ``ended_at`` is the moment the seat ran out, so a late run records the same value."""
    n = Device.objects.filter(state=Device.ACTIVE, active_until__lte=now).update(
        state=Device.EXPIRED, ended_at=F("active_until")
    )
    return {"job": "expire_idle_devices", "expired": n}


# --- rollup_concurrency ------------------------------------------------------------------------


def rollup_concurrency(*, now: datetime) -> dict:
    """Per concurrent item and closed slot: distinct active devices, the limit (quantity), and
    overuse devices, recomputed from ``SlotDevice`` for every slot a report arrived for since
    the last run. A slot still open (``slot_start + 180 s > now``) is left for a later run: the
    watermark stays at the first report of an open slot, so that run sees its reports again."""
    name = "rollup_concurrency"
    closed_before = now - timedelta(seconds=SLOT_SECONDS)  # slot_start <= this: closed
    with transaction.atomic():
        state = _lock_job(name)
        since = _window_start(state, now)
        item, report, slot_device, rollup = _t(LicenseItem), _t(UsageReport), _t(SlotDevice), _t(ConcurrencyRollup)
        if state.watermark is None:
            # First run (or after JobState was cleared): roll every closed slot, one GROUP BY.
            source, params = f"{slot_device} sd", []
        else:
            source = f"""{slot_device} sd JOIN (
                SELECT DISTINCT r.item_id, r.slot_start
                FROM {report} r JOIN {item} ri ON ri.id = r.item_id
                WHERE ri.option = %s AND r.received_at > %s AND r.received_at <= %s
            ) a ON a.item_id = sd.item_id AND a.slot_start = sd.slot_start"""
            params = [rules.PER_CONCURRENT_DEVICE, since, now]
        rolled = _execute(
            f"""
            INSERT INTO {rollup} (item_id, slot_start, active_devices, "limit", overuse_devices)
            SELECT sd.item_id, sd.slot_start, COUNT(*), i.quantity,
                   SUM(CASE WHEN sd.overuse THEN 1 ELSE 0 END)
            FROM {source}
            JOIN {item} i ON i.id = sd.item_id
            WHERE sd.slot_start <= %s
            GROUP BY sd.item_id, sd.slot_start, i.quantity
            ON CONFLICT (item_id, slot_start) DO UPDATE SET
                active_devices = excluded.active_devices, "limit" = excluded."limit",
                overuse_devices = excluded.overuse_devices
            """,
            [*params, closed_before],
        )
        # The API refuses slots more than 5 minutes ahead, so a report of a still-open slot was
        # received after closed_before - 5 min: the received_at index bounds this to a few minutes.
        first_open = UsageReport.objects.filter(
            item__option=rules.PER_CONCURRENT_DEVICE,
            received_at__gt=max(since, closed_before - MAX_FUTURE_SLOT - LATE_COMMIT_MARGIN),
            received_at__lte=now,
            slot_start__gt=closed_before,
        ).aggregate(m=Min("received_at"))["m"]
        # Hold the watermark just before the first report of a still-open slot.
        watermark = min(now, first_open - timedelta(microseconds=1)) if first_open else now
        JobState.objects.filter(pk=state.pk).update(watermark=watermark, updated_at=now)
    return {"job": name, "slots_rolled": rolled, "since": _iso(since), "watermark": _iso(watermark)}


# --- rollup_usage ------------------------------------------------------------------------------


def rollup_usage(*, now: datetime) -> dict:
    """Usage per item and metric in 2-hour buckets and per UTC day. Every bucket a report
    arrived for since the last run is recomputed whole from ``UsageCount`` (the current bucket
    too, so charts show today); each day from its 2-hour buckets."""
    name = "rollup_usage"
    with transaction.atomic():
        state = _lock_job(name)
        since = _window_start(state, now)
        report, count, rollup = _t(UsageReport), _t(UsageCount), _t(UsageRollup)
        upsert = """
            ON CONFLICT (item_id, granularity, bucket_start, metric) DO UPDATE SET count = excluded.count
        """
        if state.watermark is None:
            # First run (or after JobState was cleared): every bucket and day, one GROUP BY each.
            bucket, day = _floor_sql("c.slot_start", BUCKET_SECONDS), _floor_sql("u.bucket_start", DAY_SECONDS)
            two_hour_sql = f"""
                SELECT c.item_id, %s, {bucket}, c.metric, SUM(c.count) FROM {count} c
                WHERE 1 = 1 GROUP BY c.item_id, {bucket}, c.metric"""
            day_sql = f"""
                SELECT u.item_id, %s, {day}, u.metric, SUM(u.count) FROM {rollup} u
                WHERE u.granularity = %s GROUP BY u.item_id, {day}, u.metric"""
            two_hour_params, day_params = [UsageRollup.TWO_HOURS], [UsageRollup.DAY, UsageRollup.TWO_HOURS]
        else:
            # The buckets and days of reports received in the window, each recomputed whole.
            two_hour_sql = f"""
                SELECT c.item_id, %s, a.bucket_start, c.metric, SUM(c.count)
                FROM {count} c JOIN (
                    SELECT DISTINCT r.item_id,
                           {_floor_sql("r.slot_start", BUCKET_SECONDS)} AS bucket_start,
                           {_floor_sql("r.slot_start", BUCKET_SECONDS, BUCKET_SECONDS)} AS bucket_end
                    FROM {report} r WHERE r.received_at > %s AND r.received_at <= %s
                ) a ON a.item_id = c.item_id AND c.slot_start >= a.bucket_start AND c.slot_start < a.bucket_end
                WHERE 1 = 1
                GROUP BY c.item_id, a.bucket_start, c.metric"""
            day_sql = f"""
                SELECT u.item_id, %s, a.day_start, u.metric, SUM(u.count)
                FROM {rollup} u JOIN (
                    SELECT DISTINCT r.item_id,
                           {_floor_sql("r.slot_start", DAY_SECONDS)} AS day_start,
                           {_floor_sql("r.slot_start", DAY_SECONDS, DAY_SECONDS)} AS day_end
                    FROM {report} r WHERE r.received_at > %s AND r.received_at <= %s
                ) a ON a.item_id = u.item_id AND u.bucket_start >= a.day_start AND u.bucket_start < a.day_end
                WHERE u.granularity = %s
                GROUP BY u.item_id, a.day_start, u.metric"""
            two_hour_params = [UsageRollup.TWO_HOURS, since, now]
            day_params = [UsageRollup.DAY, since, now, UsageRollup.TWO_HOURS]
        insert = f"INSERT INTO {rollup} (item_id, granularity, bucket_start, metric, count)"
        buckets = _execute(f"{insert} {two_hour_sql} {upsert}", two_hour_params)
        days = _execute(f"{insert} {day_sql} {upsert}", day_params)
        JobState.objects.filter(pk=state.pk).update(watermark=now, updated_at=now)
    return {"job": name, "buckets_rolled": buckets, "days_rolled": days, "since": _iso(since), "watermark": _iso(now)}


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
        _t(QuotaCounter),
        _t(Device),
        _t(License),
        _t(AlertSent),
    )
    pages_limit = _json_int_sql("i.quantities", "substr(qc.metric, 7)")
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
            WHERE i.option IN (%s, %s) AND d.state = %s AND d.active_until > %s
            GROUP BY d.item_id, i.quantity
            UNION ALL
            SELECT qc.item_id, 'overuse', qc.used, COALESCE(i.overuse_budget, 1000 * i.quantity)
            FROM {counter} qc JOIN {item} i ON i.id = qc.item_id
            WHERE i.option = %s AND qc.metric = %s
        ) u
        JOIN {item} i ON i.id = u.item_id
        JOIN {lic} l ON l.id = i.license_id
        CROSS JOIN (SELECT 60 AS threshold UNION ALL SELECT 80 UNION ALL SELECT 100) t
        WHERE l.status = %s AND l.starts_at <= %s AND l.expires_at > %s
          AND u.lim > 0 AND u.used * 100 >= u.lim * t.threshold
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
            Device.ACTIVE,
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
    return {"job": "send_usage_alerts", "emails": emails, "alerts": alerts, "no_recipient": unsent, "failed": failed}


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


# --- purge_old_data ----------------------------------------------------------------------------


def _purge(model, where: str, params: Sequence, *, children: Sequence[tuple] = (), batch: int = PURGE_BATCH) -> dict:
    """Delete ``model`` rows matching ``where`` (and their ``children`` rows first: (model, fk
    column)) in batches by primary key range, one transaction per batch: a killed run keeps
    what it finished and the next run continues. Each batch is a cheap primary-key range scan."""
    table = _t(model)
    deleted = {model._meta.model_name: 0, **{child._meta.model_name: 0 for child, _ in children}}
    low, high = _fetchall(f"SELECT MIN(id), MAX(id) FROM {table} WHERE {where}", params)[0]
    if low is None:
        return deleted
    for start in range(low, high + 1, batch):
        cond = f"id >= %s AND id < %s AND {where}"
        cond_params = [start, start + batch, *params]
        with transaction.atomic():
            for child, fk in children:
                deleted[child._meta.model_name] += _execute(
                    f"DELETE FROM {_t(child)} WHERE {fk} IN (SELECT id FROM {table} WHERE {cond})", cond_params
                )
            deleted[model._meta.model_name] += _execute(f"DELETE FROM {table} WHERE {cond}", cond_params)
    return deleted


def purge_old_data(*, now: datetime, batch: int = PURGE_BATCH) -> dict:
    """Raw usage reports (with their counts) and slot activity past ``REPORT_RETENTION_DAYS``;
    dedup memory idle longer than the longest dedup interval plus ``DEDUP_MEMORY_MARGIN``;
    decisions past ``DECISION_RETENTION_DAYS`` (default: the report retention). Rollups stay:
    they are the history."""
    report_cutoff = now - timedelta(days=settings.REPORT_RETENTION_DAYS)
    decision_days = getattr(settings, "DECISION_RETENTION_DAYS", settings.REPORT_RETENTION_DAYS)
    decision_cutoff = now - timedelta(days=decision_days)
    longest_ms = LicenseItem.objects.aggregate(m=Max("dedup_interval_ms"))["m"] or 0
    sighting_cutoff = now - timedelta(milliseconds=longest_ms) - DEDUP_MEMORY_MARGIN
    summary: dict = {"job": "purge_old_data"}
    summary.update(
        _purge(UsageReport, "received_at < %s", [report_cutoff], children=[(UsageCount, "report_id")], batch=batch)
    )
    summary.update(_purge(SlotDevice, "slot_start < %s", [report_cutoff], batch=batch))
    summary.update(_purge(SightingMemory, "updated_at < %s", [sighting_cutoff], batch=batch))
    summary.update(_purge(Decision, "created_at < %s", [decision_cutoff], batch=batch))
    return summary


JOBS: dict[str, Callable[..., dict]] = {
    "expire_idle_devices": expire_idle_devices,
    "rollup_concurrency": rollup_concurrency,
    "rollup_usage": rollup_usage,
    "send_usage_alerts": send_usage_alerts,
    "send_renewal_reminders": send_renewal_reminders,
    "purge_old_data": purge_old_data,
}
