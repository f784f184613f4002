"""Organizations with their members and alert recipients, projects with their items in
consumption order, the multi-tenant domain list, and users with their memberships."""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count

from ..models import (
    AlertRecipient,
    LicenseItem,
    LicenseItemQuerySet,
    Membership,
    MultiTenantDomain,
    Organization,
    Project,
)
from .base import AuditedAdmin
from .items import ItemColumns
from .protection import PROTECTION_FIELDS, ProtectionAdminMixin


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class AlertRecipientInline(admin.TabularInline):
    model = AlertRecipient
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    list_display = ["id", "name", "license_count", "project_count", "created_at"]
    search_fields = ["id", "name"]
    inlines = [MembershipInline, AlertRecipientInline]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_licenses=Count("licenses", distinct=True), n_projects=Count("projects", distinct=True))
        )

    @admin.display(description="licenses", ordering="n_licenses")
    def license_count(self, obj):
        return obj.n_licenses

    @admin.display(description="projects", ordering="n_projects")
    def project_count(self, obj):
        return obj.n_projects

    def get_readonly_fields(self, request, obj=None):
        # The id is the customer's id, matched by license files: fixed once created.
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields


class ProjectItemInline(ItemColumns, admin.TabularInline):
    """A project's items in consumption order; only their place in it is edited here."""

    model = LicenseItem
    extra = 0
    can_delete = False
    fields = ["link", "license", "product", "edition", "addon", "option", "amount", "expires_at", "position"]
    readonly_fields = ["link", "license", "product", "edition", "addon", "option", "amount", "expires_at"]
    verbose_name_plural = "items in consumption order (position first, then the item that expires first)"

    def has_add_permission(self, request, obj=None):
        return False  # items come from a license file or "add quota" on the license

    def get_queryset(self, request):
        return cast(LicenseItemQuerySet, super().get_queryset(request)).in_consumption_order()

    @admin.display(description="expires")
    def expires_at(self, obj):
        return obj.license.expires_at.strftime("%Y-%m-%d %H:%M UTC")


@admin.register(Project)
class ProjectAdmin(ProtectionAdminMixin, AuditedAdmin):
    list_display = ["name", "organization", "item_count", "licenses", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "organization__id", "organization__name", "license_key"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    fields = ["organization", "name", "license_key", "previous_key", "created_at", "session_password_state"]
    fields += PROTECTION_FIELDS
    readonly_fields = ["license_key", "previous_key", "created_at", "session_password_state"]
    inlines = [ProjectItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_items=Count("items"))

    @admin.display(description="items", ordering="n_items")
    def item_count(self, obj):
        return obj.n_items

    @admin.display(description="licenses")
    def licenses(self, obj):
        ids = obj.items.values_list("license__license_id", flat=True).distinct().order_by("license__license_id")
        return ", ".join(ids)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields


@admin.register(MultiTenantDomain)
class MultiTenantDomainAdmin(AuditedAdmin):
    list_display = ["domain"]
    search_fields = ["domain"]


class UserMembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organization"]


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserWithMembershipsAdmin(AuditedAdmin, UserAdmin):
    inlines = [UserMembershipInline]
    list_display = ["username", "email", "is_staff", "is_active", "organizations", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "memberships__organization", "memberships__role"]

    @admin.display(description="organizations")
    def organizations(self, obj):
        return ", ".join(f"{m.organization_id} ({m.role})" for m in obj.memberships.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships")
