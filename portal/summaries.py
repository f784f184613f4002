"""What the portal shows of an item: quota and seat meters, the projected day a quota runs out,
and the peak of active devices over the last 30 days (methods in docs/portal.md).

``summarize_items`` reads everything for any number of items in a fixed number of queries, so a
page's query count does not grow with its devices, reports or items."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import BigIntegerField, Case, Count, ExpressionWrapper, Max, Sum, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from devices import quota
from devices.models import OVERUSE_SPENT, Decision, Device
from licenses import rules
from licenses.models import LicenseItem
from usage.models import ConcurrencyRollup, UsageRollup

SEAT_OPTIONS = (rules.PER_CLIENT_DEVICE, rules.PER_SERVER)
QUOTA_OPTIONS = (rules.PER_BARCODE_SCAN, rules.PER_PAGE)
PROJECTION_DAYS = 7  # the rate of a quota projection: the mean of the last 7 complete days
PEAK_DAYS = 30
# Rules of devices.services whose decision took a new seat; their counts are from before it.
SEAT_TAKEN_RULES = ("seat_taken", "server_taken")
WARN_PERCENT = 80

METRIC_LABELS = {
    "barcode_scans": "Barcode scans",
    "pages_core": "Pages (core)",
    "pages_webcam": "Frames (webcam)",
    "pages_pdfr": "Pages (PDF rasterizer)",
    "pages_ocr": "Pages (OCR)",
}
OPTION_LABELS = {
    rules.PER_BARCODE_SCAN: "Per barcode scan",
    rules.PER_PAGE: "Per page",
    rules.PER_CLIENT_DEVICE: "Per client device",
    rules.PER_CONCURRENT_DEVICE: "Per concurrent device",
    rules.PER_SERVER: "Per server",
    rules.PER_DOMAIN: "Per domain",
}


EDITION_LABELS = {"javascript": "JavaScript", "mobile": "Mobile", "desktop": "Desktop", "server": "Server"}


def license_state(license, now: datetime) -> str:
    """active, suspended, revoked, expired or not_started: what the customer needs to know."""
    if license.status != "active":
        return license.status
    if now >= license.expires_at:
        return "expired"
    if now < license.starts_at:
        return "not_started"
    return "active"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def start_of_day(d: date) -> datetime:
    from datetime import UTC

    return datetime.combine(d, time.min, tzinfo=UTC)


@dataclass
class Projection:
    """When a quota reaches its quantity at the recent daily rate."""

    kind: str  # "exhausted", "date", "after_expiry", "idle"
    rate_per_day: float = 0.0
    day: date | None = None
    days_left: int | None = None


@dataclass
class Meter:
    label: str
    used: int
    limit: int
    unit: str = ""
    refused_at: int | None = None  # where new use is refused (the limit plus grace)
    projection: Projection | None = None

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0

    @property
    def bar_percent(self) -> float:
        return min(100.0, self.percent)

    @property
    def level(self) -> str:
        if self.percent >= 100:
            return "full"
        if self.percent >= WARN_PERCENT:
            return "warn"
        return "ok"

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass
class ItemSummary:
    item: LicenseItem
    meters: list[Meter] = field(default_factory=list)
    peak_30d: int | None = None  # seat and concurrent items
    state: str = "active"  # the license's, see license_state

    @property
    def usable(self) -> bool:
        return self.state == "active"

    @property
    def option_label(self) -> str:
        return OPTION_LABELS.get(self.item.option, self.item.option)

    @property
    def title(self) -> str:
        item = self.item
        parts = [rules.PRODUCTS.get(item.product, item.product)]
        if item.edition:
            parts.append(EDITION_LABELS.get(item.edition, item.edition.capitalize()))
        if item.addon:
            parts.append(item.addon.replace("_", " ") + " add-on")
        return ", ".join(parts)


def _projection(meter: Meter, rate_per_day: float, *, today: date, expires_at: datetime) -> Projection:
    if meter.used >= meter.limit:
        return Projection("exhausted", rate_per_day)
    if rate_per_day <= 0:
        return Projection("idle", 0.0)
    days = math.ceil((meter.limit - meter.used) / rate_per_day)
    # Compared in days first: at a quantity of billions and a few a day the run-out day is past
    # the last date Python can hold.
    if days >= (expires_at.date() - today).days + 1:
        return Projection("after_expiry", rate_per_day, None, days)
    day = today + timedelta(days=days)
    if start_of_day(day) >= expires_at:
        return Projection("after_expiry", rate_per_day, day, days)
    return Projection("date", rate_per_day, day, days)


def summarize_items(items: list[LicenseItem], *, now: datetime) -> list[ItemSummary]:
    """One summary per item, in the given order. Items need ``license`` loaded (select_related)."""
    ids = [i.pk for i in items]
    seat_ids = [i.pk for i in items if i.option in SEAT_OPTIONS]
    quota_ids = [i.pk for i in items if i.option in QUOTA_OPTIONS]
    concurrent_ids = [i.pk for i in items if i.option == rules.PER_CONCURRENT_DEVICE]
    today = now.date()
    since = now - timedelta(days=PEAK_DAYS)

    counters: dict[int, dict[str, int]] = defaultdict(dict)
    for (item_id, metric), used in quota.totals(ids).items():
        counters[item_id][metric] = used

    seats: dict[int, int] = {}
    peaks: dict[int, int] = {}
    if seat_ids:
        seats = dict(
            Device.objects.holding_seat(now)
            .filter(item_id__in=seat_ids)
            .values_list("item_id")
            .annotate(n=Count("id"))
            .values_list("item_id", "n")
        )
        # Seats are only taken at an authorization, and each authorization decision records the
        # active count it saw (before the new seat, when it took one): the largest count after
        # each decision of the last 30 days is the peak (docs/portal.md).
        # In 64 bits: a count quoted at a seat ceiling of 2,147,483,647 x 1.1 is past 2^31.
        quoted = Cast(KT("counts__active"), BigIntegerField())
        after = Case(
            When(rule__in=SEAT_TAKEN_RULES, then=ExpressionWrapper(quoted + 1, output_field=BigIntegerField())),
            default=quoted,
        )
        peaks = dict(
            Decision.objects.filter(item_id__in=seat_ids, endpoint=Decision.AUTHORIZE, created_at__gte=since)
            .values_list("item_id")
            .annotate(peak=Max(after))
            .values_list("item_id", "peak")
        )
    if concurrent_ids:
        peaks.update(
            ConcurrencyRollup.objects.filter(item_id__in=concurrent_ids, slot_start__gte=since)
            .values_list("item_id")
            .annotate(peak=Max("active_devices"))
            .values_list("item_id", "peak")
        )

    rates: dict[tuple[int, str], int] = {}
    if quota_ids:
        rates = {
            (item_id, metric): total
            for item_id, metric, total in UsageRollup.objects.filter(
                item_id__in=quota_ids,
                granularity=UsageRollup.DAY,
                bucket_start__gte=start_of_day(today - timedelta(days=PROJECTION_DAYS)),
                bucket_start__lt=start_of_day(today),
            )
            .values_list("item_id", "metric")
            .annotate(total=Sum("count"))
            .values_list("item_id", "metric", "total")
        }

    summaries = []
    for item in items:
        s = ItemSummary(item, state=license_state(item.license, now))
        # The rate window never reaches back before the license started.
        window_days = max(1, min(PROJECTION_DAYS, (today - item.license.starts_at.date()).days))
        if item.option == rules.PER_BARCODE_SCAN:
            metrics = [("barcode_scans", item.quantity or 0)]
        elif item.option == rules.PER_PAGE:
            metrics = [(f"pages_{m}", n) for m, n in (item.quantities or {}).items()]
        else:
            metrics = []
        for metric, quantity in metrics:
            meter = Meter(
                metric_label(metric),
                counters[item.pk].get(metric, 0),
                quantity,
                unit="pages" if metric.startswith("pages") else "scans",
                refused_at=item.quota_refused_from(quantity),
            )
            rate = rates.get((item.pk, metric), 0) / window_days
            meter.projection = _projection(meter, rate, today=today, expires_at=item.license.expires_at)
            s.meters.append(meter)
        if item.option in SEAT_OPTIONS:
            active = seats.get(item.pk, 0)
            unit = "servers" if item.option == rules.PER_SERVER else "seats"
            s.meters.append(
                Meter("Active " + unit, active, item.quantity or 0, unit=unit, refused_at=item.seat_ceiling)
            )
            s.peak_30d = max(active, peaks.get(item.pk) or 0)
        elif item.option == rules.PER_CONCURRENT_DEVICE:
            spent = counters[item.pk].get(OVERUSE_SPENT, 0)
            s.meters.append(Meter("Overuse budget spent", spent, item.effective_overuse_budget, unit="device-slots"))
            s.peak_30d = peaks.get(item.pk) or 0
        summaries.append(s)
    return summaries


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until expiry, 0 on the last day, negative once expired."""
    return math.floor((expires_at - now).total_seconds() / 86400)
