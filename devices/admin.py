"""Staff views of devices and of every authorization decision (SPEC section 10).

Both are read-only: devices change only through the device API and services (the "Release seat"
action calls ``devices.release.release_device``); decisions are a record, never edited.

Decisions of a project or a device are the Decision changelist filtered by
``?project__id__exact=<id>`` and ``&device_uuid=<uuid>`` (see ``decisions_admin_url``), linked
from the device list, the device page and each decision's project cell. A device's decisions are
found by its uuid within its project, not by the foreign key, so that refusals recorded before
the device had a row (a new device refused a seat) are listed too.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.timezone import localtime

from devices.models import Decision, Device

DECISIONS_SHOWN = 20  # on a device's page; the rest are one link away


def decisions_admin_url(*, project=None, device=None, **filters) -> str:
    """The admin changelist of decisions, filtered to a project and/or a device (by its uuid in
    its project). Other apps (the project admin, the staff dashboard) link here rather than
    embedding decisions themselves; extra ``filters`` are query lookups, e.g. ``code__exact=120``."""
    query = {}
    if device is not None:
        project = device.project_id
        query["device_uuid"] = device.device_uuid
    if project is not None:
        query["project__id__exact"] = getattr(project, "pk", project)
    query.update(filters)
    url = reverse("admin:devices_decision_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def device_decisions(device: Device):
    """Every decision about a device, newest first."""
    return Decision.objects.filter(project_id=device.project_id, device_uuid=device.device_uuid).order_by(
        "-created_at", "-id"
    )


def verdict_text(decision: Decision) -> str:
    return "allowed" if decision.allowed else f"refused {decision.code or ''}".strip()


_COUNTS_ORDER = ["module", "used", "active", "quantity", "limit", "ceiling", "grace", "budget", "spent"]


def format_counts(counts) -> str:
    """{"active": 33, "quantity": 30, "ceiling": 33} -> "active 33 · quantity 30 · ceiling 33"."""
    if not counts:
        return ""
    if not isinstance(counts, dict):
        return str(counts)
    # PostgreSQL's jsonb does not keep key order: the usual ones in reading order, then the rest.
    order = {name: i for i, name in enumerate(_COUNTS_ORDER)}
    names = sorted(counts, key=lambda name: (order.get(name, len(order)), name))
    return " · ".join(f"{name} {counts[name]}" for name in names)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = [
        "device_uuid",
        "device_name",
        "project",
        "item",
        "client_type",
        "origin",
        "state",
        "last_seen_at",
        "active_until",
        "decisions_link",
    ]
    list_filter = ["state", "offline", "client_type", "item__option", "item__product", "project"]
    search_fields = ["device_uuid", "device_name", "origin"]
    list_select_related = ["project", "item"]
    date_hierarchy = "last_seen_at"
    show_full_result_count = False
    actions = ["release_seat"]
    fieldsets = [
        (None, {"fields": ["project", "device_uuid", "item", "state"]}),
        ("Client", {"fields": ["client_type", "origin", "platform", "device_name", "sdk_version"]}),
        (
            "Times",
            {
                "fields": [
                    "first_authorized_at",
                    "authorized_at",
                    "last_seen_at",
                    "first_used_at",
                    "active_until",
                    "ended_at",
                ]
            },
        ),
        (f"Decisions (latest {DECISIONS_SHOWN})", {"fields": ["decisions_link", "latest_decisions"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Device._meta.fields if f.name != "id"] + ["decisions_link", "latest_decisions"]

    def has_add_permission(self, request) -> bool:
        return False  # devices come from the device API

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # released or expired devices keep their row (history, late usage)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a read-only page; the one change staff make is the action below

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("devices.change_device")

    @admin.display(description="decisions")
    def decisions_link(self, obj: Device) -> str:
        if obj.pk is None:
            return ""
        return format_html('<a href="{}">decisions</a>', decisions_admin_url(device=obj))

    @admin.display(description="latest")
    def latest_decisions(self, obj: Device) -> str:
        if obj.pk is None:
            return ""
        decisions = list(device_decisions(obj).select_related("item")[:DECISIONS_SHOWN])
        if not decisions:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    date_format(localtime(d.created_at), "Y-m-d H:i:s"),
                    d.endpoint,
                    verdict_text(d),
                    d.rule,
                    d.item or "-",
                    format_counts(d.counts),
                    d.message,
                )
                for d in decisions
            ),
        )
        return format_html(
            "<table><thead><tr><th>at</th><th>endpoint</th><th>verdict</th><th>rule</th><th>item</th>"
            "<th>counts</th><th>message</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Release seat of the selected devices", permissions=["release"])
    def release_seat(self, request, queryset) -> None:
        from devices.release import release_device

        now = timezone.now()
        released = skipped = 0
        for device in queryset:
            if release_device(device=device, now=now, actor=request.user):
                released += 1
            else:
                skipped += 1
        self.message_user(request, f"Released {released} device(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} device(s) held no seat (released or expired).", messages.INFO)


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """Every authorization decision and refusal, with the rule and the counts at that moment."""

    list_display = [
        "created_at",
        "endpoint",
        "device_link",
        "project_link",
        "item",
        "verdict",
        "rule",
        "counts_text",
        "short_message",
    ]
    list_filter = ["endpoint", "allowed", "code", "rule", "project"]
    search_fields = ["=device_uuid"]
    search_help_text = "Exact device_uuid"
    list_select_related = ["project", "item", "device"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 100
    fields = [
        "created_at",
        "endpoint",
        "project",
        "device",
        "device_uuid",
        "item",
        "allowed",
        "code",
        "rule",
        "message",
        "counts",
    ]

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="device", ordering="device_uuid")
    def device_link(self, obj: Decision) -> str:
        if obj.device_id is None:
            return obj.device_uuid
        url = reverse("admin:devices_device_change", args=[obj.device_id])
        return format_html('<a href="{}">{}</a>', url, obj.device_uuid)

    @admin.display(description="project", ordering="project__name")
    def project_link(self, obj: Decision) -> str:
        return format_html('<a href="{}">{}</a>', decisions_admin_url(project=obj.project_id), obj.project)

    @admin.display(description="verdict", ordering="allowed")
    def verdict(self, obj: Decision) -> str:
        return verdict_text(obj)

    @admin.display(description="counts")
    def counts_text(self, obj: Decision) -> str:
        return format_counts(obj.counts)

    @admin.display(description="message")
    def short_message(self, obj: Decision) -> str:
        return Truncator(obj.message).chars(90)
