"""Insight pages (docs/insight.md): a project's anomaly flags and seats burned, an item's what-if
replay and right quantity, seat burn with bulk release (confirm, then undo as the idle release),
and the staff's upsell and anomaly list. Owners and staff run replays; viewers read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from devices.models import Decision, ReleaseBatch
from devices.seat_burn import burn_groups
from devices.services import release_device
from licenses.models import LicenseItem
from portal.access import can_change, get_project_for
from portal.bulk import open_batches, record_batch
from portal.paging import other_parameters
from portal.views.statistics import _date_field
from usage.insight.quantity import OPTIONS as QUANTITY_OPTIONS
from usage.insight.quantity import right_quantity
from usage.models import ProjectAnomaly, ReplayRun
from usage.replay import FIELDS, PolicyError, check_window, parse_changes, what_if
from usage.replay.policy import MAX_VALUE

INLINE_DAYS = 31  # longer windows run as a Celery task with a progress bar
GROUPS_PER_PAGE = 50  # seat burn: the groups with most seats burned first
LABELS = {
    "quantity": "Quantity",
    "device_grace_percent": "Device grace (%)",
    "period": "Period",
    "heartbeat_timeout_s": "Heartbeat timeout (s)",
    "overuse_percent": "Overuse (%)",
    "overuse_budget": "Overuse budget (device-slots)",
    "quota_grace_percent": "Quota grace (%)",
    "dedup_interval_ms": "Dedup interval (ms)",
}


def _midnight(d) -> datetime:
    return datetime.combine(d, datetime.min.time(), tzinfo=UTC)


def _window_date(label: str) -> forms.DateField:
    """A required UTC date within the range any date input takes (the statistics page's bounded
    field): outside it a form error on the field, never an overflow further on."""
    field = _date_field(label)
    field.required = True
    return field


class WindowForm(forms.Form):
    start = _window_date("From (UTC, inclusive)")
    end = _window_date("To (UTC, exclusive)")

    def clean(self):
        data = super().clean() or {}
        if data.get("start") and data.get("end"):
            try:
                check_window(_midnight(data["start"]), _midnight(data["end"]))
            except PolicyError as e:
                self.add_error("end", e.reason)
        return data


def _policy_form(item: LicenseItem, data=None) -> forms.Form:
    fields: dict[str, forms.Field] = {}
    for name in FIELDS.get(item.option, ()):
        if name == "quantities":
            for module, quantity in sorted((item.quantities or {}).items()):
                fields[f"quantities.{module}"] = forms.IntegerField(
                    label=f"Pages of {module}", min_value=1, max_value=MAX_VALUE, required=False, initial=quantity
                )
        elif name == "period":
            choices = [(p, p) for p in ("yearly", "quarterly", "monthly", "daily")]
            fields[name] = forms.ChoiceField(label=LABELS[name], choices=choices, required=False, initial=item.period)
        else:
            current = getattr(item, name)
            fields[name] = forms.IntegerField(
                label=LABELS[name], min_value=0, max_value=MAX_VALUE, required=False, initial=current
            )
    return type("PolicyForm", (forms.Form,), fields)(data)


def _item_for(request: HttpRequest, pk: int, item_pk: int):
    project = get_project_for(request, pk)
    item = get_object_or_404(LicenseItem.objects.select_related("license", "project"), pk=item_pk, project=project)
    return project, item


@require_GET
@login_required
def project_insight(request: HttpRequest, pk: int) -> HttpResponse:
    """The project's anomaly flags of the last 14 days and its seats burned."""
    project = get_project_for(request, pk)
    now = timezone.now()
    flags = ProjectAnomaly.objects.filter(project=project, day__gte=(now - timedelta(days=14)).date())
    groups = burn_groups(project, now=now)
    context = {
        "project": project,
        "flags": list(flags),
        "burned": sum(g.burned_count for g in groups),
        "groups": len(groups),
        "items": list(project.items.select_related("license").order_by("id")),
        "now": now,
    }
    return render(request, "portal/insight_project.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def item_insight(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    """What if: a changed policy over a past window, next to what happened; the right quantity."""
    project, item = _item_for(request, pk, item_pk)
    may_run = can_change(request, project.organization_id)
    today = timezone.now().date()
    window = WindowForm(
        request.POST or None, initial={"start": today - timedelta(days=30), "end": today + timedelta(days=1)}
    )
    policy = _policy_form(item, request.POST or None)
    result = recommendation = None
    if request.method == "POST":
        if not may_run:
            raise PermissionDenied("Only an owner of the organization or staff can run a replay")
        if window.is_valid() and policy.is_valid():
            start, end = _midnight(window.cleaned_data["start"]), _midnight(window.cleaned_data["end"])
            pairs = [
                f"{k}={v}"
                for k, v in policy.cleaned_data.items()
                if v not in (None, "") and v != policy.fields[k].initial
            ]
            try:
                changes = parse_changes(item, pairs)
            except PolicyError as e:
                policy.add_error(e.field if e.field in policy.fields else None, e.reason)
            else:
                if (end - start).days > INLINE_DAYS:
                    run = ReplayRun.objects.create(  # type: ignore[misc]  # login_required: a User
                        item=item,
                        requested_by=request.user,
                        changes=changes,
                        start=start,
                        end=end,
                        created_at=timezone.now(),
                    )
                    from usage.tasks import run_replay

                    run_replay.delay(run.pk)
                    return redirect("portal:replay_run", pk=project.pk, item_pk=item.pk, run_pk=run.pk)
                result = what_if(item, start=start, end=end, changes=changes)
                if item.option in QUANTITY_OPTIONS and request.POST.get("recommend"):
                    recommendation = right_quantity(item, start=start, end=end)
    context = {
        "project": project,
        "item": item,
        "window": window,
        "policy": policy,
        "result": result,
        "recommendation": recommendation,
        "may_run": may_run,
        "recommendable": item.option in QUANTITY_OPTIONS,
        "runs": list(ReplayRun.objects.filter(item=item)[:5]),
    }
    return render(request, "portal/insight_item.html", context)


@require_GET
@login_required
def replay_run(request: HttpRequest, pk: int, item_pk: int, run_pk: int) -> HttpResponse:
    project, item = _item_for(request, pk, item_pk)
    run = get_object_or_404(ReplayRun, pk=run_pk, item=item)
    return render(request, "portal/insight_run.html", {"project": project, "item": item, "run": run})


@require_http_methods(["GET", "POST"])
@login_required
def seat_burn(request: HttpRequest, pk: int) -> HttpResponse:
    """Groups of UUIDs that are one client re-registering; owners release the older ones of a
    group (a confirmation first, then an undo for 10 minutes, as the idle release)."""
    project = get_project_for(request, pk, change=request.method == "POST")
    now = timezone.now()
    groups = burn_groups(project, now=now)
    asked = None
    if request.method == "POST":
        asked_for = request.POST.get("group", "")
        index = int(asked_for) if asked_for.isascii() and asked_for.isdigit() and len(asked_for) < 7 else -1
        if not 0 <= index < len(groups):
            messages.error(request, "That group is gone: the devices changed since the page was shown.")
            return redirect("portal:seat_burn", pk=project.pk)
        group = groups[index]
        if request.POST.get("confirm") != "yes":
            asked = {"index": groups.index(group), "group": group}
        else:
            released = [d.pk for d in group.burned if release_device(device=d, now=now, actor=request.user)]
            batch = record_batch(project, kind=ReleaseBatch.SEAT_BURN, device_ids=released, actor=request.user, now=now)
            messages.success(request, f"Released {len(released)} older device{'s' if len(released) != 1 else ''}.")
            return redirect(reverse("portal:seat_burn", args=[project.pk]) + f"?batch={batch.pk}")
    owner = can_change(request, project.organization_id)
    # Every group counted, GROUPS_PER_PAGE shown (their devices read from their rows only then);
    # a group keeps its index in the whole list, which the release form sends.
    page = Paginator(list(enumerate(groups)), GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "groups": page.object_list,
        "page": page,
        "query": other_parameters(request),
        "group_count": len(groups),
        "burned": sum(g.burned_count for g in groups),
        "asked": asked,
        "undoable": list(open_batches(project, now=now)[:5]) if owner else [],  # any owner may undo (portal.bulk)
        "can_change": owner,
        "now": now,
    }
    return render(request, "portal/insight_seat_burn.html", context)


@require_GET
@login_required
def staff_insight(request: HttpRequest) -> HttpResponse:
    """Staff: items refusing devices (upsell), most refusals first, and the anomaly flags."""
    if not request.user.is_staff:
        raise PermissionDenied("Staff only")
    now = timezone.now()
    since = now - timedelta(days=30)
    refusing = (
        Decision.objects.filter(created_at__gte=since, allowed=False, code=120, item__option__in=QUANTITY_OPTIONS)
        .values("item_id")
        .annotate(refusals=Count("id"), devices=Count("device_uuid", distinct=True))
        .order_by("-refusals", "item_id")[:50]
    )
    rows: list[dict[str, Any]] = [dict(r) for r in refusing]
    items = LicenseItem.objects.select_related("project__organization").in_bulk([r["item_id"] for r in rows])
    for r in rows:
        r["item"] = items.get(r["item_id"])
    flags = ProjectAnomaly.objects.filter(day__gte=(now - timedelta(days=7)).date()).select_related(
        "project__organization"
    )[:200]
    return render(
        request, "portal/insight_staff.html", {"rows": rows, "flags": list(flags), "since": since, "now": now}
    )


__all__ = ["item_insight", "project_insight", "replay_run", "seat_burn", "staff_insight", "Q"]
