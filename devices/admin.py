"""Staff views of devices and of every authorization decision (issue 3, point 7; SPEC section 10).

Both are read-only: devices change only through the device API and services (the "Release seat"
action calls ``devices.services.release_device``); decisions are a record, never edited.
Decisions of a project or a device are the Decision changelist filtered by
``?project__id__exact=<id>`` or ``?device__id__exact=<id>`` (see ``decisions_admin_url``), linked
from the device list, the device page and each decision's project cell.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from devices.models import Decision, Device

DECISIONS_INLINE_LIMIT = 20


def decisions_admin_url(*, project=None, device=None, **filters) -> str:
    """The admin changelist of decisions, filtered to a project and/or a device. Other apps (the
    project admin, the staff dashboard) link here rather than embedding decisions themselves."""
    query = {}
    if project is not None:
        query["project__id__exact"] = getattr(project, "pk", project)
    if device is not None:
        query["device__id__exact"] = getattr(device, "pk", device)
    query.update(filters)
    url = reverse("admin:devices_decision_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def format_counts(counts) -> str:
    """{"active": 33, "quantity": 30, "ceiling": 33} -> "active 33 · quantity 30 · ceiling 33"."""
    if not counts:
        return ""
    if not isinstance(counts, dict):
        return str(counts)
    # PostgreSQL's jsonb does not keep key order: show the usual ones in reading order, then the rest.
    order = {name: i for i, name in enumerate(_COUNTS_ORDER)}
    names = sorted(counts, key=lambda name: (order.get(name, len(order)), name))
    return " · ".join(f"{name} {counts[name]}" for name in names)


_COUNTS_ORDER = ["module", "used", "active", "quantity", "limit", "ceiling", "grace", "budget", "spent"]


class DecisionInline(admin.TabularInline):
    """The latest decisions of a device; the full list is one link away (the changelist)."""

    model = Decision
    fk_name = "device"
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"Latest decisions (up to {DECISIONS_INLINE_LIMIT})"
    fields = ["created_at", "endpoint", "verdict", "code", "rule", "item", "counts_text", "message"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("item")
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if not object_id:
            return queryset.none()
        latest = Decision.objects.filter(device_id=object_id).order_by("-created_at", "-id").values("id")
        return queryset.filter(id__in=Subquery(latest[:DECISIONS_INLINE_LIMIT]))

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="verdict")
    def verdict(self, obj: Decision) -> str:
        return "allowed" if obj.allowed else "refused"

    @admin.display(description="counts")
    def counts_text(self, obj: Decision) -> str:
        return format_counts(obj.counts)


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
    list_filter = ["state", "client_type", "item__option", "item__product", "project"]
    search_fields = ["device_uuid", "device_name", "origin"]
    list_select_related = ["project", "item"]
    date_hierarchy = "last_seen_at"
    show_full_result_count = False
    actions = ["release_seat"]
    inlines = [DecisionInline]
    readonly_fields = ["decisions_link"]
    fieldsets = [
        (None, {"fields": ["project", "device_uuid", "item", "state", "decisions_link"]}),
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
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Device._meta.fields if f.name != "id"] + ["decisions_link"]

    def has_add_permission(self, request) -> bool:
        return False  # devices come from the device API

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # released or expired devices keep their row (history, late usage)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only page; the one change staff make is the action below

    def has_release_permission(self, request) -> bool:
        return request.user.has_perm("devices.change_device")

    @admin.display(description="decisions")
    def decisions_link(self, obj: Device) -> str:
        if obj.pk is None:
            return ""
        return format_html('<a href="{}">decisions</a>', decisions_admin_url(device=obj))

    @admin.action(description="Release seat of the selected devices", permissions=["release"])
    def release_seat(self, request, queryset) -> None:
        from devices.services import release_device

        now = timezone.now()
        released = 0
        for device in queryset.select_related("item"):
            if release_device(device=device, now=now, actor=request.user):
                released += 1
        skipped = queryset.count() - released
        self.message_user(request, f"Released {released} device(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} device(s) held no seat (already released).", messages.INFO)


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """Every authorization decision and refusal, with the rule and the counts at that moment."""

    list_display = [
        "created_at",
        "endpoint",
        "device_link",
        "project_link",
        "item",
        "allowed",
        "code",
        "rule",
        "counts_text",
        "message",
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

    @admin.display(description="counts")
    def counts_text(self, obj: Decision) -> str:
        return format_counts(obj.counts)
