"""Customer portal pages of the devices app: devices and servers of a project, a device's own
history, and releasing a seat (owners). Access through portal.access; the release goes through
devices.services.release_device, the same function the admin and the device API use."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from devices import tally
from devices.models import Decision, Device, ReleaseBatch, holding_seat_q
from devices.search import containing
from portal.access import can_change, check_access, get_project_for
from portal.bulk import MAX_BULK, holds_seat, idle_devices, open_batches, record_batch, release_idle, undo_batch
from portal.display import shown
from portal.explain import explain
from portal.paging import CappedPaginator, other_parameters
from portal.refusals import SEAT_RULES, idle_hints
from usage.models import UsageReport

PAGE_SIZE = 50
TIMELINE = 20  # refusals on a device's "why was it refused?" timeline


class DeviceFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    state = forms.ChoiceField(
        label="State",
        required=False,
        choices=[("", "Any state"), ("active", "Active"), ("expired", "Expired"), ("released", "Released")],
    )
    kind = forms.ChoiceField(
        label="Type",
        required=False,
        choices=[("", "Devices and servers"), ("devices", "Devices"), ("servers", "Servers"), ("offline", "Offline")],
    )


def _state_q(state: str, now) -> Q:
    """A device holds its seat while active and now < active_until (SPEC section 4), whether or not
    the expiry job has marked it yet; the portal shows it as the customer would count it."""
    if state == "active":
        return holding_seat_q(now)
    if state == "expired":
        return Q(state=Device.EXPIRED) | (Q(state=Device.ACTIVE) & ~holding_seat_q(now))
    return Q(state=Device.RELEASED)


def effective_state(device: Device, now) -> str:
    if device.state == Device.ACTIVE and device.active_until <= now:
        return Device.EXPIRED
    return device.state


def _get_device_for(request: HttpRequest, pk: int, *, change: bool = False) -> Device:
    device = get_object_or_404(Device.objects.select_related("project__organization", "item__license"), pk=pk)
    check_access(request, device.project.organization_id, change=change)
    return device


@require_GET
@login_required
def device_list(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk)
    now = timezone.now()
    form = DeviceFilterForm(request.GET or None)
    devices = Device.objects.filter(project=project).select_related("item").order_by("-last_seen_at", "-id")
    filters = {"q": "", "state": "", "kind": ""}
    if form.is_valid():
        filters.update(form.cleaned_data)
    # Control characters never match (devices.search joins the columns with a line feed).
    q = "".join(c for c in filters["q"] if c.isprintable()).strip()
    if q:  # uuid, name, origin or platform contains it: one trigram index scan (devices.search)
        devices = containing(devices, q)
    if filters["state"]:
        devices = devices.filter(_state_q(filters["state"], now))
    if filters["kind"] == "servers":
        devices = devices.filter(client_type="server")
    elif filters["kind"] == "devices":
        devices = devices.exclude(client_type="server")
    elif filters["kind"] == "offline":  # registered offline (SPEC section 12)
        devices = devices.filter(offline=True)
    # No COUNT(*) of the whole fleet on every page: counted up to a cap.
    page = CappedPaginator(devices, PAGE_SIZE).get_page(request.GET.get("page"))
    for device in page:
        shown(device, effective_state=effective_state(device, now), releasable=holds_seat(device, now))
    totals = tally.totals(project.pk, now=now)  # kept by the database, not counted (devices.tally)
    context = {
        "project": project,
        "form": form,
        "page": page,
        "totals": totals,
        "query": other_parameters(request),
        "can_change": can_change(request, project.organization_id),
        "now": now,
    }
    return render(request, "portal/device_list.html", context)


@require_GET
@login_required
def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = _get_device_for(request, pk)
    now = timezone.now()
    decisions = (
        Decision.objects.filter(project_id=device.project_id, device_uuid=device.device_uuid)
        .select_related("item")
        .order_by("-created_at", "-id")
    )
    page = Paginator(decisions, PAGE_SIZE).get_page(request.GET.get("page"))
    refused = list(
        Decision.objects.filter(project_id=device.project_id, device_uuid=device.device_uuid, allowed=False)
        .select_related("item")
        .order_by("-created_at", "-id")[:TIMELINE]
    )
    hints = idle_hints([device.item], now=now) if device.item else {}
    for d in refused:
        hint = hints.get(d.item_id, "") if d.item_id is not None and d.rule in SEAT_RULES else ""
        shown(d, explanation=explain(d, hint=hint))
    for d in page:
        shown(d, explanation=explain(d))
    reports = list(
        UsageReport.objects.filter(device=device).select_related("item").order_by("-received_at", "-id")[:PAGE_SIZE]
    )
    context = {
        "device": device,
        "project": device.project,
        "state": effective_state(device, now),
        "page": page,
        "reports": reports,
        "refused": refused,
        "timeline_limit": TIMELINE,
        "holds_seat": holds_seat(device, now),
        "can_change": can_change(request, device.project.organization_id),
        "now": now,
    }
    return render(request, "portal/device_detail.html", context)


def _safe_next(request: HttpRequest, target: str, default: str) -> str:
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@require_http_methods(["GET", "POST"])
@login_required
def device_release(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what releasing will do, and the button; POST with confirm=yes: free the device's seat
    (owners only; idempotent, like the API's release)."""
    device = _get_device_for(request, pk, change=True)
    from devices.services import release_device

    now = timezone.now()
    label = device.device_name or device.device_uuid
    back = _safe_next(
        request,
        request.POST.get("next") or request.GET.get("next", ""),
        reverse("portal:devices", args=[device.project_id]),
    )
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        if release_device(device=device, now=now, actor=request.user):
            messages.success(request, f"Released {label}: its seat is free.")
        else:
            messages.info(request, f"{label} was not holding a seat.")
        return redirect(back)
    context = {"device": device, "project": device.project, "holds_seat": holds_seat(device, now), "next": back}
    return render(request, "portal/device_release.html", context)


class IdleForm(forms.Form):
    days = forms.IntegerField(label="Idle for more than (days)", min_value=1, max_value=3650, initial=30)


@require_http_methods(["GET", "POST"])
@login_required
def release_idle_devices(request: HttpRequest, pk: int) -> HttpResponse:
    """Owners pick "idle more than N days", see the devices and the seats it frees, confirm;
    any owner can undo the release for 10 minutes (portal.bulk, a ReleaseBatch row)."""
    project = get_project_for(request, pk, change=True)
    now = timezone.now()
    form = IdleForm(request.POST or request.GET or None)
    days = form.cleaned_data["days"] if form.is_valid() else 30
    if request.method == "POST" and form.is_valid() and request.POST.get("confirm") == "yes":
        released = release_idle(project, idle_days=days, actor=request.user, now=now)
        batch = record_batch(project, kind=ReleaseBatch.IDLE, device_ids=released, actor=request.user, now=now)
        messages.success(
            request, f"Released {len(released)} idle device{'s' if len(released) != 1 else ''}: their seats are free."
        )
        return redirect(reverse("portal:release_idle", args=[project.pk]) + f"?days={days}&batch={batch.pk}")
    devices = idle_devices(project, idle_days=days, now=now)
    listed = list(devices[:PAGE_SIZE])
    per_item = list(
        devices.values("item_id", "item__option", "item__quantity").annotate(n=Count("id")).order_by("item_id")
    )
    total = sum(r["n"] for r in per_item)
    context = {
        "project": project,
        "form": form,
        "days": days,
        "devices": listed,
        "per_item": per_item,
        "total": total,
        "shown": len(listed),
        "max_bulk": MAX_BULK,
        "undoable": list(open_batches(project, now=now)[:5]),
        "now": now,
    }
    return render(request, "portal/release_idle.html", context)


@require_POST
@login_required
def release_idle_undo(request: HttpRequest, pk: int) -> HttpResponse:
    """Undo a bulk release of this project (any owner, any browser, within 10 minutes)."""
    project = get_project_for(request, pk, change=True)
    now = timezone.now()
    batch_id = request.POST.get("batch", "")
    batch = None
    if batch_id.isascii() and batch_id.isdigit():
        batch = ReleaseBatch.objects.select_related("project", "undone_by").filter(project=project, pk=batch_id).first()
    if batch is None:
        messages.error(request, "Nothing to undo: no such release of this project.")
        return redirect("portal:project", pk=project.pk)
    undo = undo_batch(batch, actor=request.user, now=now)
    if undo.refused:
        messages.error(request, undo.refused)
    else:
        text = f"Undone: {undo.restored} device{'s' if undo.restored != 1 else ''} hold their seat again."
        if undo.skipped:
            text += f" {undo.skipped} could not (its seat was taken since, or it ran out)."
        messages.success(request, text)
    return redirect("portal:devices", pk=project.pk)
