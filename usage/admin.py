"""Read-only admin for what the jobs produce: rollups, alert and reminder records, job state.
The jobs own these rows; staff look, filter and search, and never edit them by hand."""

from __future__ import annotations

from django.contrib import admin

from usage.models import AlertSent, ConcurrencyRollup, JobState, ReminderSent, UsageRollup


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 100
    show_full_result_count = False  # no COUNT(*) over big tables on every page

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConcurrencyRollup)
class ConcurrencyRollupAdmin(ReadOnlyAdmin):
    list_display = ("slot_start", "item", "active_devices", "limit", "overuse_devices")
    list_filter = ("item__option",)
    search_fields = ("item__project__license_key", "item__project__name", "item__license__license_id", "=item__id")
    list_select_related = ("item",)
    date_hierarchy = "slot_start"
    ordering = ("-slot_start", "item_id")


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = ("bucket_start", "granularity", "item", "metric", "count")
    list_filter = ("granularity", "metric")
    search_fields = ("item__project__license_key", "item__project__name", "item__license__license_id", "=item__id")
    list_select_related = ("item",)
    date_hierarchy = "bucket_start"
    ordering = ("-bucket_start", "item_id", "metric")


@admin.register(AlertSent)
class AlertSentAdmin(ReadOnlyAdmin):
    list_display = ("sent_at", "item", "organization", "kind", "threshold")
    list_filter = ("kind", "threshold")
    search_fields = ("item__license__organization__name", "item__license__license_id", "=item__id")
    list_select_related = ("item__license__organization",)
    ordering = ("-sent_at",)

    @admin.display(description="organization")
    def organization(self, obj):
        return obj.item.license.organization


@admin.register(ReminderSent)
class ReminderSentAdmin(ReadOnlyAdmin):
    list_display = ("sent_at", "license", "organization", "days_before")
    list_filter = ("days_before",)
    search_fields = ("license__license_id", "license__organization__name")
    list_select_related = ("license__organization",)
    ordering = ("-sent_at",)

    @admin.display(description="organization")
    def organization(self, obj):
        return obj.license.organization


@admin.register(JobState)
class JobStateAdmin(ReadOnlyAdmin):
    """Deleting a rollup job's state makes its next run rebuild the rollups from all the raw
    data still kept (docs/jobs.md); superusers only."""

    list_display = ("name", "watermark", "updated_at")
    ordering = ("name",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser
