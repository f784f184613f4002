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
from django.views.decorators.http import require_GET, require_POST

from devices.models import Decision, Device
from portal.access import can_change, check_access, get_project_for
from usage.models import UsageReport

PAGE_SIZE = 50


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
        choices=[("", "Devices and servers"), ("devices", "Devices"), ("servers", "Servers")],
    )


def _state_q(state: str, now) -> Q:
    """A device holds its seat while active and now < active_until (SPEC section 4), whether or not
    the expiry job has marked it yet; the portal shows it as the customer would count it."""
    if state == "active":
        return Q(state=Device.ACTIVE, active_until__gt=now)
    if state == "expired":
        return Q(state=Device.EXPIRED) | Q(state=Device.ACTIVE, active_until__lte=now)
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
    if filters["q"]:
        q = filters["q"].strip()
        devices = devices.filter(
            Q(device_uuid__icontains=q)
            | Q(device_name__icontains=q)
            | Q(origin__icontains=q)
            | Q(platform__icontains=q)
        )
    if filters["state"]:
        devices = devices.filter(_state_q(filters["state"], now))
    if filters["kind"] == "servers":
        devices = devices.filter(client_type="server")
    elif filters["kind"] == "devices":
        devices = devices.exclude(client_type="server")
    page = Paginator(devices, PAGE_SIZE).get_page(request.GET.get("page"))
    for device in page:
        device.effective_state = effective_state(device, now)
    totals = Device.objects.filter(project=project).aggregate(
        all=Count("id"),
        active=Count("id", filter=_state_q("active", now)),
        expired=Count("id", filter=_state_q("expired", now)),
        released=Count("id", filter=_state_q("released", now)),
        servers=Count("id", filter=Q(client_type="server")),
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "project": project,
        "form": form,
        "page": page,
        "totals": totals,
        "query": query.urlencode(),
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
    reports = list(
        UsageReport.objects.filter(device=device).select_related("item").order_by("-received_at", "-id")[:PAGE_SIZE]
    )
    context = {
        "device": device,
        "project": device.project,
        "state": effective_state(device, now),
        "page": page,
        "reports": reports,
        "can_change": can_change(request, device.project.organization_id),
        "now": now,
    }
    return render(request, "portal/device_detail.html", context)


@require_POST
@login_required
def device_release(request: HttpRequest, pk: int) -> HttpResponse:
    """Free the device's seat (owners only); idempotent, like the API's release."""
    device = _get_device_for(request, pk, change=True)
    from devices.services import release_device

    label = device.device_name or device.device_uuid
    if release_device(device=device, now=timezone.now(), actor=request.user):
        messages.success(request, f"Released {label}: its seat is free.")
    else:
        messages.info(request, f"{label} was not holding a seat.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("portal:devices", args=[device.project_id])
    return redirect(target)
