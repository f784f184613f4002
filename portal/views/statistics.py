"""Customer portal pages of the usage app: statistics, concurrency per slot, CSV downloads.

Statistics read the rollups (usage.jobs fills them every 10 minutes) and the live QuotaCounter
for all-time totals; the CSV downloads are usage.exports.write_csv, the same code as
``manage.py export_usage`` (SPEC section 9)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Max, Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from devices import quota
from devices.models import OVERUSE_SPENT, QuotaCounter
from licenses import rules
from licenses.clock import EARLIEST, LATEST
from portal.access import get_project_for
from portal.charts import heat_map, line_chart, pie_chart, slot_chart
from portal.display import shown
from portal.summaries import METRIC_LABELS, metric_label, start_of_day
from usage.models import METRICS, ConcurrencyRollup, UsageRollup
from usage.top_devices import DEVICE_FIELDS, DEVICE_ROWS, default_period, devices_by_usage

MAX_PERIOD_DAYS = 366
EXPORTS = ("usage", "concurrency", "devices")


def _date_field(label: str) -> forms.DateField:
    """An optional UTC date within the range any date input takes (licenses.clock.within_range),
    so a day or a period built on it never overflows; outside it, a form error on the field."""
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(EARLIEST.date()), MaxValueValidator((LATEST - timedelta(days=1)).date())],
    )


class PeriodForm(forms.Form):
    start = _date_field("From (UTC date)")
    end = _date_field("To (UTC date, inclusive)")
    day = _date_field("Day of the 2-hour table")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("The period must end on or after its first day.")
            if (end - start).days >= MAX_PERIOD_DAYS:
                raise forms.ValidationError(f"Choose a period of at most {MAX_PERIOD_DAYS} days.")
        return data


def _project_metrics(items) -> list[str]:
    """The metrics a project's items can count, in the SPEC's order."""
    present = set()
    for item in items:
        if item.option == rules.PER_BARCODE_SCAN:
            present.add("barcode_scans")
        elif item.option == rules.PER_PAGE:
            present.update(f"pages_{m}" for m in (item.quantities or {}))
    return [m for m in METRICS if m in present]


def _item_label(item) -> str:
    parts = [rules.PRODUCTS.get(item.product, item.product), item.edition, item.addon.replace("_", " ")]
    return f"#{item.pk} " + " ".join(p for p in parts if p)


@require_GET
@login_required
def statistics(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk)
    now = timezone.now()
    today = now.date()
    (start, end), day = default_period(now), today
    form = PeriodForm(request.GET or None, initial={"start": start, "end": end, "day": day})
    if form.is_valid():
        start = form.cleaned_data["start"] or start
        end = form.cleaned_data["end"] or end
        day = form.cleaned_data["day"] or day
        if start > end:  # only one bound given
            start, end = end, start
        if (end - start).days >= MAX_PERIOD_DAYS:
            start = end - timedelta(days=MAX_PERIOD_DAYS - 1)
    period_start, period_end = start_of_day(start), start_of_day(end + timedelta(days=1))
    items = list(project.items_in_order())
    by_id = {i.pk: i for i in items}
    metrics = _project_metrics(items)
    rollups = UsageRollup.objects.filter(item__project=project)

    totals: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: {"all": 0, "period": 0, "today": 0})
    # All history: a quota item's counter (what its quota is checked against, rollups or not);
    # any other item's usage (a seat or concurrent item's scans) from its day rollups.
    for item_id, metric, n in (
        rollups.filter(granularity=UsageRollup.DAY)
        .values_list("item_id", "metric")
        .annotate(n=Sum("count"))
        .values_list("item_id", "metric", "n")
    ):
        totals[(item_id, metric)]["all"] = n
    for item_id, metric, used in (
        quota.with_totals(QuotaCounter.objects.filter(item__project=project))
        .exclude(metric=OVERUSE_SPENT)
        .values_list("item_id", "metric", "total")
    ):
        totals[(item_id, metric)]["all"] = used
    for item_id, metric, n in (
        rollups.filter(granularity=UsageRollup.DAY, bucket_start__gte=period_start, bucket_start__lt=period_end)
        .values_list("item_id", "metric")
        .annotate(n=Sum("count"))
        .values_list("item_id", "metric", "n")
    ):
        totals[(item_id, metric)]["period"] = n
    for item_id, metric, n in (
        rollups.filter(granularity=UsageRollup.TWO_HOURS, bucket_start__gte=start_of_day(today))
        .values_list("item_id", "metric")
        .annotate(n=Sum("count"))
        .values_list("item_id", "metric", "n")
    ):
        totals[(item_id, metric)]["today"] = n
    total_rows: list[dict[str, Any]] = [
        {
            "item": by_id[item_id],
            "item_label": _item_label(by_id[item_id]),
            "metric": metric_label(metric),
            "metric_key": metric,
            **v,
        }
        for (item_id, metric), v in sorted(
            totals.items(), key=lambda kv: (kv[0][0], METRICS.index(kv[0][1]) if kv[0][1] in METRICS else 99)
        )
        if item_id in by_id
    ]
    for metric in {m for _, m in totals}:
        if metric in METRICS and metric not in metrics:
            metrics.append(metric)
    metrics.sort(key=METRICS.index)

    # Trend: one series per item and metric, one point per day.
    days = [start + timedelta(days=k) for k in range(((end - start).days) + 1)]
    daily: dict[tuple[date, int, str], int] = defaultdict(int)
    for bucket, item_id, metric, n in (
        rollups.filter(granularity=UsageRollup.DAY, bucket_start__gte=period_start, bucket_start__lt=period_end)
        .values_list("bucket_start", "item_id", "metric")
        .annotate(n=Sum("count"))
        .values_list("bucket_start", "item_id", "metric", "n")
    ):
        daily[(bucket.astimezone(UTC).date(), item_id, metric)] += n
    keys = [(r["item"].pk, r["metric_key"]) for r in total_rows]
    series_labels = [f"{metric_label(m)} · item #{i}" for i, m in keys]
    series = [(label, [daily[(d, i, m)] for d in days]) for label, (i, m) in zip(series_labels, keys, strict=True)]
    chart = line_chart(
        [d.strftime("%m-%d") for d in days],
        series,
        title=f"Daily usage of {project.name}, {start} to {end}",
        x_title="Day (UTC)",
        y_title="Count per day (scans, pages, frames)",
    )
    trend_rows = [{"day": d, "values": [daily[(d, i, m)] for i, m in keys]} for d in days]
    pies = [
        (title, pie_chart([(label, r[field]) for label, r in zip(series_labels, total_rows, strict=True)], title=title))
        for field, title in (("all", "All history"), ("period", f"{start} to {end}"), ("today", f"Today, {today}"))
    ]

    # The chosen day in 2-hour buckets.
    two_hour: dict[tuple[datetime, str], int] = defaultdict(int)
    day_start = start_of_day(day)
    for bucket, metric, n in (
        rollups.filter(
            granularity=UsageRollup.TWO_HOURS,
            bucket_start__gte=day_start,
            bucket_start__lt=day_start + timedelta(days=1),
        )
        .values_list("bucket_start", "metric")
        .annotate(n=Sum("count"))
        .values_list("bucket_start", "metric", "n")
    ):
        two_hour[(bucket.astimezone(UTC), metric)] += n
    buckets = [day_start + timedelta(hours=2 * k) for k in range(12)]
    bucket_rows = [
        {"start": b, "end": b + timedelta(hours=2), "values": [two_hour[(b, m)] for m in metrics]} for b in buckets
    ]

    # Devices by usage in the period (usage.top_devices): the rollup job's snapshot for the
    # default period, "as of" its run; any other period summed live on the per-device days.
    top, devices_as_of = devices_by_usage(project.pk, list(by_id), start, end)
    device_rows = [
        {"report__device_id": r["device_id"], "total": r["total"], "scans": r["scans"], "pages": r["pages"]}
        | {f"report__device__{k}": r[k] for k in DEVICE_FIELDS}
        for r in top
    ]
    context = {
        "project": project,
        "form": form,
        "start": start,
        "end": end,
        "day": day,
        "today": today,
        "metrics": [metric_label(m) for m in metrics],
        "total_rows": total_rows,
        "chart": chart,
        "trend_rows": trend_rows,
        "series_labels": series_labels,
        "pies": pies,
        "bucket_rows": bucket_rows,
        "device_rows": device_rows,
        "device_limit": DEVICE_ROWS,
        "devices_as_of": devices_as_of,
        "export_from": start.isoformat(),
        "export_to": (end + timedelta(days=1)).isoformat(),
        "metric_labels": METRIC_LABELS,
    }
    return render(request, "portal/statistics.html", context)


HEAT_DAYS = 28


def _hours(rows) -> list[dict]:
    """The day's slots summed up per hour (24 rows instead of 480): peak, slots above the limit."""
    hours = [{"hour": h, "peak": 0, "over": 0, "slots": 0} for h in range(24)]
    for r in rows:
        h = hours[r.slot_start.astimezone(UTC).hour]
        h["peak"] = max(h["peak"], r.active_devices)
        h["over"] += int(r.over)
        h["slots"] += int(r.active_devices > 0)
    return hours


class DayForm(forms.Form):
    day = _date_field("Day (UTC)")


@require_GET
@login_required
def concurrency(request: HttpRequest, pk: int) -> HttpResponse:
    """Per concurrent item: the active devices of each 3-minute slot of one day against the limit."""
    project = get_project_for(request, pk)
    now = timezone.now()
    day = now.date()
    form = DayForm(request.GET or None, initial={"day": day})
    if form.is_valid() and form.cleaned_data["day"]:
        day = form.cleaned_data["day"]
    day_start = start_of_day(day)
    items = [i for i in project.items_in_order() if i.option == rules.PER_CONCURRENT_DEVICE]
    slots: dict[int, list[ConcurrencyRollup]] = defaultdict(list)
    for r in ConcurrencyRollup.objects.filter(
        item__project=project, slot_start__gte=day_start, slot_start__lt=day_start + timedelta(days=1)
    ).order_by("item_id", "slot_start"):
        slots[r.item_id].append(r)
    spent = dict(
        QuotaCounter.objects.filter(item__project=project, metric=OVERUSE_SPENT).values_list("item_id", "used")
    )
    # The heat-map: the peak of each weekday and hour over the HEAT_DAYS days ending with the day.
    heat: dict[int, dict[tuple[int, int], int]] = defaultdict(dict)
    heat_from = day - timedelta(days=HEAT_DAYS - 1)
    for item_id, weekday, hour, peak in (
        ConcurrencyRollup.objects.filter(
            item__project=project,
            slot_start__gte=start_of_day(heat_from),
            slot_start__lt=day_start + timedelta(days=1),
        )
        .annotate(weekday=ExtractIsoWeekDay("slot_start", tzinfo=UTC), hour=ExtractHour("slot_start", tzinfo=UTC))
        .values_list("item_id", "weekday", "hour")
        .annotate(peak=Max("active_devices"))
        .values_list("item_id", "weekday", "hour", "peak")
    ):
        heat[item_id][(weekday - 1, hour)] = peak
    sections = []
    for item in items:
        rows = slots.get(item.pk, [])
        for r in rows:
            shown(r, slot_end=r.slot_start + timedelta(seconds=180), over=r.active_devices > r.limit)
        points = [
            (
                int((r.slot_start - day_start).total_seconds() // 180),
                r.active_devices,
                r.overuse_devices,
                f"{r.slot_start:%H:%M}-{r.slot_start + timedelta(seconds=180):%H:%M}",
            )
            for r in rows
        ]
        budget = item.effective_overuse_budget
        sections.append(
            {
                "item": item,
                "item_label": _item_label(item),
                "rows": [r for r in rows if r.active_devices > 0],
                "chart": slot_chart(
                    points,
                    limit=item.quantity or 0,
                    ceiling=item.concurrency_ceiling,
                    title=f"Active devices per 3-minute slot on {day}, item #{item.pk}",
                    x_title="Time of day (UTC)",
                    y_title="Active devices",
                ),
                "hours": _hours(rows),
                "heat": heat_map(
                    heat.get(item.pk, {}),
                    limit=item.quantity or 0,
                    title=f"Peak active devices by weekday and hour, {heat_from} to {day}, item #{item.pk}",
                ),
                "peak": max((r.active_devices for r in rows), default=0),
                "over_slots": sum(1 for r in rows if r.active_devices > r.limit),
                "overuse_today": sum(r.overuse_devices for r in rows),
                "spent": spent.get(item.pk, 0),
                "budget": budget,
                "spent_percent": 100.0 * spent.get(item.pk, 0) / budget if budget else 0.0,
            }
        )
    context = {
        "project": project,
        "form": form,
        "day": day,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1) if day < now.date() else None,
        "heat_days": HEAT_DAYS,
        "sections": sections,
        "export_from": day.isoformat(),
        "export_to": (day + timedelta(days=1)).isoformat(),
    }
    return render(request, "portal/concurrency.html", context)


@require_GET
@login_required
def export_csv(request: HttpRequest, pk: int, what: str) -> HttpResponseBase:
    """The SPEC section 9 CSV of a project as a download; ?from= (inclusive) &to= (exclusive)."""
    from usage.exports import parse_bound, stream_csv

    project = get_project_for(request, pk)
    if what not in EXPORTS:
        return HttpResponseBadRequest(f"what must be one of {', '.join(EXPORTS)}")
    try:
        start = parse_bound(request.GET["from"]) if request.GET.get("from") else None
        end = parse_bound(request.GET["to"]) if request.GET.get("to") else None
    except ValueError as e:
        return HttpResponseBadRequest(f"from/to must be a date (YYYY-MM-DD) or an RFC 3339 date-time: {e}")
    name = [slugify(project.name) or f"project-{project.pk}", what]
    if start:
        name.append(start.strftime("from-%Y%m%d"))
    if end:
        name.append(end.strftime("to-%Y%m%d"))
    # Streamed from server-side cursors: flat memory and the first bytes at once, whatever the
    # number of rows (usage.exports.stream_csv, the same bytes as write_csv).
    response = StreamingHttpResponse(
        stream_csv(project=project, what=what, start=start, end=end), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{"-".join(name)}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
