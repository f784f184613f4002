"""Usage reports, dedup memory, quota counters, slot activity, rollups and alert state
(SPEC sections 4, 6, 8, 9)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from devices.models import Device
from licenses.models import License, LicenseItem

# Metric names, shared by counters, rollups and the usage CSV (SPEC section 9).
METRICS = ("barcode_scans", "pages_core", "pages_webcam", "pages_pdfr", "pages_ocr")


class UsageReport(models.Model):
    """One report as received. Unique per (device, report_id): a retry with the same body replays
    ``response``; a different body (another ``body_hash``) is a 409."""

    # No single-column indexes on the two keys: the unique (device, report_id[, slot_start]) and
    # (item, slot_start) indexes lead with them, and every report would write both twice.
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="reports", db_index=False)
    report_id = models.CharField(max_length=64)
    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="reports", db_index=False)
    slot_start = models.DateTimeField()
    body_hash = models.CharField(max_length=64)  # sha256 of the canonical request body
    # What was counted: {"barcode_scans": 4, "pages_core": 3, ...}, metric -> count (non-zero only).
    counted = models.JSONField(default=dict)
    allowed = models.BooleanField()
    response = models.JSONField()  # the first answer, replayed for a duplicate
    received_at = models.DateTimeField(db_index=True)
    # The device request's address (devices.context), for key-sharing flags (usage.anomalies).
    client_address = models.GenericIPAddressField(null=True, blank=True)
    # The report's raw sightings, packed (``usage.sightings_store``), for a what-if replay with
    # another dedup interval (docs/insight.md); null when the report carried none.
    raw_sightings = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "report_id"], name="report_id_unique_per_device")]
        indexes = [models.Index(fields=["item", "slot_start"], name="report_item_slot_idx")]

    def __str__(self) -> str:
        return f"{self.device_id}:{self.report_id}"


class UsageCount(models.Model):
    """One metric of one report, normalized so rollups are a single GROUP BY."""

    # Covered by the unique (report, metric) and the (item, slot_start) index (as UsageReport's).
    report = models.ForeignKey(UsageReport, on_delete=models.CASCADE, related_name="counts", db_index=False)
    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="+", db_index=False)
    slot_start = models.DateTimeField()
    metric = models.CharField(max_length=32)
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "metric"], name="usage_count_unique")]
        indexes = [models.Index(fields=["item", "slot_start"], name="usage_count_item_slot_idx")]


class DeviceUsageDay(models.Model):
    """Usage per device, item, UTC day (of the slot) and metric: the statistics page's devices
    by usage. Kept in the report's own insert (``usage.hot_sql.insert_report``): exact, once
    per report, no job."""

    # Covered by the unique (device, item, day, metric) and the (item, day) index.
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="usage_days", db_index=False)
    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    metric = models.CharField(max_length=32)
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "item", "day", "metric"], name="device_usage_day_unique")
        ]
        indexes = [models.Index(fields=["item", "day"], name="device_usage_day_item_idx")]


class DeviceUsageTop(models.Model):
    """A project's devices by usage over the statistics page's default period (``start`` to
    ``end``, UTC days, inclusive), exact as of ``as_of``: the rollup job's run that computed it
    with the live definition (``usage.top_devices``). ``rows``: ``[[device_id, total, scans,
    pages], ...]``, the first ``limit`` devices, most first. The page uses it only for exactly
    this period and limit, and says "as of"; any other period is summed live."""

    project = models.OneToOneField("licenses.Project", on_delete=models.CASCADE, related_name="+")
    start = models.DateField()
    end = models.DateField()
    limit = models.PositiveIntegerField()
    as_of = models.DateTimeField()
    rows = models.JSONField(default=list)


class SightingMemory(models.Model):
    """Server-side dedup memory: the latest ts_ms a device saw a (format, text), counted or not.

    ``key`` is sha256(format + NUL + text), so long texts index well. Lives across reports."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sightings")
    key = models.CharField(max_length=64)
    last_ts_ms = models.BigIntegerField()
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "key"], name="sighting_memory_unique")]


class SlotDevice(models.Model):
    """A device counted active in a slot of a per_concurrent_device item (a non-zero report).

    The row's existence is the count: the unique constraint makes one device count once per slot;
    ``overuse`` marks devices admitted above the quantity (each spent one device-slot of budget)."""

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="slot_devices")
    slot_start = models.DateTimeField()
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="slots")
    overuse = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "slot_start", "device"], name="slot_device_unique")]


class ConcurrencyRollup(models.Model):
    """Per item and closed slot: distinct active devices, the limit (quantity), overuse devices.

    Devices in 64 bits: a slot may reach the overuse ceiling, quantity x (100 + overuse_percent)
    / 100 (SPEC 4), past 2^31 for a quantity the importer accepts (up to 2,147,483,647)."""

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="concurrency_rollups")
    slot_start = models.DateTimeField()
    active_devices = models.PositiveBigIntegerField()
    limit = models.PositiveIntegerField()
    overuse_devices = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["slot_start"]
        constraints = [models.UniqueConstraint(fields=["item", "slot_start"], name="concurrency_rollup_unique")]


class UsageRollup(models.Model):
    """Usage per item, metric and bucket: 2-hour buckets and days."""

    TWO_HOURS = "2h"
    DAY = "day"
    GRANULARITIES = [(TWO_HOURS, "2 hours"), (DAY, "day")]

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="usage_rollups")
    granularity = models.CharField(max_length=8, choices=GRANULARITIES)
    bucket_start = models.DateTimeField()
    metric = models.CharField(max_length=32)
    count = models.BigIntegerField()

    class Meta:
        ordering = ["bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "granularity", "bucket_start", "metric"], name="usage_rollup_unique"
            )
        ]


class AlertSent(models.Model):
    """Each usage threshold (60/80/100 %) alerts once per item and kind (quota, seats, overuse)."""

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="alerts_sent")
    kind = models.CharField(max_length=32)  # e.g. "barcode_scans", "pages_ocr", "seats", "overuse"
    threshold = models.PositiveIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "kind", "threshold"], name="alert_once")]


class ReminderSent(models.Model):
    """Each renewal reminder (90/60/30/14/7/0 days before expiry) goes once per license."""

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="reminders_sent")
    days_before = models.PositiveIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["license", "days_before"], name="reminder_once")]


class JobState(models.Model):
    """Per-job bookkeeping that makes jobs resumable and idempotent (e.g. rollup watermarks)."""

    name = models.CharField(max_length=64, unique=True)
    watermark = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class RefusalAlertSent(models.Model):
    """Each failed-authorization threshold (10/20/40/60/80/100 % of a project's authorizations
    over the last hour refused) alerts once per project per UTC day (usage.refusal_alerts)."""

    project = models.ForeignKey("licenses.Project", on_delete=models.CASCADE, related_name="refusal_alerts_sent")
    threshold = models.PositiveIntegerField()
    day = models.DateField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "threshold", "day"], name="refusal_alert_once_a_day")]


class ReplayRun(models.Model):
    """A what-if replay run as a Celery task (``usage.tasks.run_replay``) for a long window: its
    request, its progress (0-100, by the day reached) and, once done, its result (the ``what_if``
    JSON). docs/insight.md."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, DONE, FAILED)]

    item = models.ForeignKey(LicenseItem, on_delete=models.CASCADE, related_name="replay_runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changes = models.JSONField(default=dict)
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class ProjectAnomaly(models.Model):
    """A key-sharing or clone flag of a project for one UTC day (``usage.anomalies``), with its
    evidence; one per project, day and kind (a later run of the day updates the evidence)."""

    project = models.ForeignKey("licenses.Project", on_delete=models.CASCADE, related_name="anomalies")
    day = models.DateField()
    kind = models.CharField(max_length=32)  # many_networks, foreign_domains, far_networks, clock_rollback
    summary = models.CharField(max_length=500)
    evidence = models.JSONField(default=dict)
    detected_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "kind"]
        constraints = [models.UniqueConstraint(fields=["project", "day", "kind"], name="anomaly_once_a_day")]


class AnomalyNotice(models.Model):
    """The anomaly email (and ``project.anomaly`` event) of a project for a day: sent once."""

    project = models.ForeignKey("licenses.Project", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="anomaly_notice_once_a_day")]


# Webhook deliveries are a job of usage.webhooks; imported here so Django registers them.
from .webhooks.models import WebhookAttempt, WebhookDelivery  # noqa: E402, F401
