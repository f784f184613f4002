"""The refusals of a project's devices (SPEC section 10): grouped by item and rule with counts over
a chosen period, each explained in words from the recorded decision (portal.explain), the latest
ones listed with a link to the device."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from devices.models import Decision
from portal.access import get_project_for
from portal.display import shown
from portal.explain import explain
from portal.paging import other_parameters
from portal.refusals import SEAT_RULES, idle_hints, refusal_groups

PAGE_SIZE = 50
PERIODS = [("1", "Last 24 hours"), ("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days")]


class RefusalFilterForm(forms.Form):
    days = forms.ChoiceField(label="Period", choices=PERIODS, required=False, initial="7")
    item = forms.TypedChoiceField(label="Item", coerce=int, required=False, empty_value=None)
    rule = forms.CharField(label="Rule", required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, items, **kwargs):
        super().__init__(*args, **kwargs)
        item = self.fields["item"]
        assert isinstance(item, forms.TypedChoiceField)  # declared above
        item.choices = [("", "Every item")] + [(i.pk, f"#{i.pk} {i.product} {i.option}") for i in items]


@require_GET
@login_required
def refusals(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk)
    now = timezone.now()
    items = list(project.items_in_order())
    form = RefusalFilterForm(request.GET or None, items=items)
    days, item_id, rule = 7, None, ""
    if form.is_valid():
        days = int(form.cleaned_data["days"] or 7)
        item_id = form.cleaned_data["item"]
        rule = form.cleaned_data["rule"]
    since = now - timedelta(days=days)
    groups = refusal_groups(project, items, since=since, until=now + timedelta(seconds=1), now=now)
    listed = (
        Decision.objects.filter(project=project, allowed=False, created_at__gte=since)
        .select_related("device", "item")
        .order_by("-created_at", "-id")
    )
    if item_id:
        listed = listed.filter(item_id=item_id)
    if rule:
        listed = listed.filter(rule=rule)
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("page"))
    hints = idle_hints(items, now=now)
    for d in page:
        hint = hints.get(d.item_id, "") if d.item_id is not None and d.rule in SEAT_RULES else ""
        shown(d, explanation=explain(d, hint=hint))
    context = {
        "project": project,
        "form": form,
        "days": days,
        "period_label": dict(PERIODS)[str(days)],
        "groups": groups,
        "total": sum(g.count for g in groups),
        "page": page,
        "query": other_parameters(request),
        "rule": rule,
        "now": now,
    }
    return render(request, "portal/refusals.html", context)
