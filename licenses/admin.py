"""The staff admin: organizations, licenses and their items, projects, users, the audit log.

Staff actions (import, renew, add quota, suspend/resume/revoke) call licenses.services; plain
admin saves of these models record an AuditLog row too (``AuditedAdmin``)."""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import audit, selectors, services
from .forms import AddQuotaForm, LicenseFileForm, LicenseItemForm, RenewForm
from .models import (
    AlertRecipient,
    AuditLog,
    License,
    LicenseItem,
    Membership,
    MultiTenantDomain,
    Organization,
    Project,
)

ACTION_NAMES = {"licenseitem": "item"}


def _action(obj, verb: str) -> str:
    name = obj._meta.model_name
    return f"{ACTION_NAMES.get(name, name)}.{verb}"


def _fresh_snapshot(obj):
    fresh = type(obj)._default_manager.filter(pk=obj.pk).first() if obj.pk is not None else None
    return selectors.snapshot(fresh)


class AuditedAdmin(admin.ModelAdmin):
    """Every add, change and delete made in these admin pages, inlines included, goes to the log."""

    def save_model(self, request, obj, form, change):
        before = _fresh_snapshot(obj) if change else None
        super().save_model(request, obj, form, change)
        # Kept on the request, not on this admin (one instance serves every request and thread).
        request._audit_before = before

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the inlines, so a license's snapshot and a project's order include them.
        obj, before = form.instance, getattr(request, "_audit_before", None)
        after = selectors.snapshot(obj)
        if not change or before != after:
            services.record_audit(
                actor=request.user,
                action=_action(obj, "change" if change else "add"),
                obj=obj,
                before=before,
                after=after,
            )

    def delete_model(self, request, obj):
        before, object_id = selectors.snapshot(obj), audit.object_id_of(obj)
        organization = None if isinstance(obj, Organization) else audit.organization_of(obj)
        super().delete_model(request, obj)
        services.record_audit(
            actor=request.user,
            action=_action(obj, "delete"),
            obj=obj,
            before=before,
            after=None,
            organization=organization,
            object_id=object_id,
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request, form, formset, change):
        befores = {}
        for f in formset.initial_forms:
            if f.instance.pk is not None:
                befores[id(f.instance)] = (audit.object_id_of(f.instance), _fresh_snapshot(f.instance))
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            services.record_audit(
                actor=request.user, action=_action(obj, "add"), obj=obj, before=None, after=selectors.snapshot(obj)
            )
        for obj, _changed in formset.changed_objects:
            before = befores.get(id(obj), (None, None))[1]
            services.record_audit(
                actor=request.user, action=_action(obj, "change"), obj=obj, before=before, after=selectors.snapshot(obj)
            )
        for obj in formset.deleted_objects:
            object_id, before = befores.get(id(obj), (None, None))
            services.record_audit(
                actor=request.user,
                action=_action(obj, "delete"),
                obj=obj,
                before=before,
                after=None,
                organization=form.instance if isinstance(form.instance, Organization) else None,
                object_id=object_id,
            )


# --- organizations -----------------------------------------------------------------------------


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


# --- licenses and items ------------------------------------------------------------------------


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [
            ("in_term", "In term now"),
            ("30d", "Expires within 30 days"),
            ("90d", "Expires within 90 days"),
            ("expired", "Expired"),
            ("future", "Not started yet"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        field = "license__" if queryset.model is LicenseItem else ""
        value = self.value()
        if value == "in_term":
            return queryset.filter(**{f"{field}starts_at__lte": now, f"{field}expires_at__gt": now})
        if value in ("30d", "90d"):
            days = 30 if value == "30d" else 90
            return queryset.filter(
                **{f"{field}expires_at__gt": now, f"{field}expires_at__lte": now + timedelta(days=days)}
            )
        if value == "expired":
            return queryset.filter(**{f"{field}expires_at__lte": now})
        if value == "future":
            return queryset.filter(**{f"{field}starts_at__gt": now})
        return queryset


class ItemsOfOneOrganizationFormSet(BaseInlineFormSet):
    """Items of a license go to projects of the license's organization."""

    def clean(self):
        super().clean()
        organization_id = self.instance.organization_id
        for form in self.forms:
            if not form.has_changed() or self._should_delete_form(form) or not hasattr(form, "cleaned_data"):
                continue
            project = form.cleaned_data.get("project")
            if project is not None and organization_id and project.organization_id != organization_id:
                form.add_error("project", "the project belongs to another organization than the license")


ITEM_FIELDSETS_FIELDS = [
    ("project", "product", "option"),
    ("edition", "addon"),
    ("quantity", "quantities", "domain"),
    ("period", "activation_basis", "device_grace_percent"),
    ("quota_grace_percent", "dedup_interval_ms"),
    ("overuse_percent", "overuse_budget", "heartbeat_timeout_s"),
    "position",
]


class LicenseItemInline(admin.StackedInline):
    model = LicenseItem
    form = LicenseItemForm
    formset = ItemsOfOneOrganizationFormSet
    extra = 0
    fields = ITEM_FIELDSETS_FIELDS

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            license = License.objects.filter(pk=object_id).first() if object_id else None
            if license is not None:
                kwargs["queryset"] = Project.objects.filter(organization_id=license.organization_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _status_action(status: str, verb: str):
    def action(modeladmin, request, queryset):
        now = timezone.now()
        done = 0
        for license in queryset.order_by("pk"):
            try:
                if license.status != status:
                    services.set_license_status(license=license, status=status, actor=request.user, now=now)
                    done += 1
            except ValidationError as e:
                modeladmin.message_user(request, "; ".join(e.messages), messages.ERROR)
        modeladmin.message_user(request, f"{verb.capitalize()}: {done} license(s).", messages.SUCCESS)

    action.__name__ = f"{verb}_licenses"
    action.short_description = f"{verb.capitalize()} the selected licenses"
    action.allowed_permissions = ("change",)
    return action


class LicenseAdminForm(forms.ModelForm):
    class Meta:
        model = License
        fields = ["license_id", "organization", "starts_at", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        starts_at, expires_at = cleaned.get("starts_at"), cleaned.get("expires_at")
        if starts_at and expires_at and expires_at <= starts_at:
            self.add_error("expires_at", "must be after starts_at")
        return cleaned


@admin.register(License)
class LicenseAdmin(AuditedAdmin):
    form = LicenseAdminForm
    list_display = ["license_id", "organization", "status", "starts_at", "expires_at", "item_summary", "projects"]
    list_filter = ["status", ExpiryFilter, "items__product", "items__option", "organization"]
    search_fields = ["license_id", "organization__id", "organization__name", "items__project__name"]
    list_select_related = ["organization"]
    date_hierarchy = "expires_at"
    autocomplete_fields = ["organization"]
    readonly_fields = ["status", "renewal_of", "created_at"]
    fields = ["license_id", "organization", "starts_at", "expires_at", "status", "renewal_of", "created_at"]
    inlines = [LicenseItemInline]
    actions = [
        _status_action(License.SUSPENDED, "suspend"),
        _status_action(License.ACTIVE, "resume"),
        _status_action(License.REVOKED, "revoke"),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("items__project").distinct()

    @admin.display(description="items")
    def item_summary(self, obj):
        return ", ".join(" ".join(p for p in (i.product, i.edition, i.addon, i.option) if p) for i in obj.items.all())

    @admin.display(description="projects")
    def projects(self, obj):
        return ", ".join(sorted({i.project.name for i in obj.items.all()}))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="licenses_license_import"),
            path("<path:object_id>/renew/", wrap(self.renew_view), name="licenses_license_renew"),
            path("<path:object_id>/add-quota/", wrap(self.add_quota_view), name="licenses_license_add_quota"),
            path("<path:object_id>/status/", wrap(self.status_view), name="licenses_license_status"),
            *super().get_urls(),
        ]

    def _context(self, request, title, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = LicenseFileForm(request.POST, request.FILES) if request.method == "POST" else LicenseFileForm()
        if request.method == "POST" and form.is_valid():
            try:
                result = services.import_license(form.cleaned_data["data"], actor=request.user, now=timezone.now())
            except services.LicenseFileError as e:
                form.add_error(None, f"{e.field}: {e.message}")
            else:
                license = License.objects.get(license_id=result["license_id"])
                self.message_user(request, f"Imported {license.license_id}.", messages.SUCCESS)
                return TemplateResponse(
                    request,
                    "admin/licenses/license/import_result.html",
                    self._context(
                        request,
                        f"Imported {license.license_id}",
                        license=license,
                        result_json=json.dumps(result, indent=2),
                    ),
                )
        return TemplateResponse(
            request, "admin/licenses/license/import.html", self._context(request, "Import license file", form=form)
        )

    def _license_or_404(self, request, object_id):
        license = get_object_or_404(License, pk=object_id)
        if not self.has_change_permission(request, license):
            raise PermissionDenied
        return license

    def renew_view(self, request, object_id):
        license = self._license_or_404(request, object_id)
        now = timezone.now()
        form = RenewForm(request.POST if request.method == "POST" else None, license=license, now=now)
        if request.method == "POST" and form.is_valid():
            try:
                new = services.renew_license(
                    license=license,
                    expires_at=form.cleaned_data["expires_at"],
                    starts_at=form.cleaned_data["starts_at"],
                    license_id=form.cleaned_data["license_id"] or None,
                    actor=request.user,
                    now=now,
                )
            except ValidationError as e:
                _add_errors(form, e)
            else:
                self.message_user(
                    request,
                    f"Renewed {license.license_id} as {new.license_id}; the keys are unchanged.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[new.pk]))
        return TemplateResponse(
            request,
            "admin/licenses/license/staff_form.html",
            self._context(request, f"Renew {license.license_id}", form=form, license=license, action="renew"),
        )

    def add_quota_view(self, request, object_id):
        license = self._license_or_404(request, object_id)
        form = AddQuotaForm(request.POST if request.method == "POST" else None, license=license)
        if request.method == "POST" and form.is_valid():
            try:
                item = services.add_quota(
                    project=form.cleaned_data["project"],
                    license=license,
                    item_fields=form.item_fields(),
                    actor=request.user,
                    now=timezone.now(),
                )
            except ValidationError as e:
                _add_errors(form, e)
            else:
                self.message_user(request, f"Added item {item.item_id} to {item.project.name}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[license.pk]))
        return TemplateResponse(
            request,
            "admin/licenses/license/staff_form.html",
            self._context(request, f"Add quota to {license.license_id}", form=form, license=license, action="add"),
        )

    def status_view(self, request, object_id):
        """GET asks for confirmation (no script needed: the CSP allows none inline); POST acts."""
        license = self._license_or_404(request, object_id)
        status = request.POST.get("status") if request.method == "POST" else request.GET.get("status", "")
        verb = {License.SUSPENDED: "suspend", License.ACTIVE: "resume", License.REVOKED: "revoke"}.get(status)
        if verb is None:
            self.message_user(request, f"Unknown status {status!r}.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[license.pk]))
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/licenses/license/status_confirm.html",
                self._context(
                    request, f"{verb.capitalize()} {license.license_id}", license=license, status=status, verb=verb
                ),
            )
        try:
            services.set_license_status(license=license, status=status, actor=request.user, now=timezone.now())
        except ValidationError as e:
            self.message_user(request, "; ".join(e.messages), messages.ERROR)
        else:
            self.message_user(request, f"{license.license_id} is now {license.status}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[license.pk]))


def _add_errors(form, error: ValidationError) -> None:
    for name, msgs in error.message_dict.items():
        for msg in msgs:
            form.add_error(name if name in form.fields else None, msg)


@admin.register(LicenseItem)
class LicenseItemAdmin(AuditedAdmin):
    form = LicenseItemForm
    list_display = [
        "id",
        "license",
        "organization",
        "project",
        "product",
        "edition",
        "addon",
        "option",
        "amount",
        "expires_at",
        "position",
    ]
    list_filter = ["product", "option", "edition", "license__status", ExpiryFilter, "license__organization"]
    search_fields = ["=id", "license__license_id", "project__name", "domain", "license__organization__name"]
    list_select_related = ["license__organization", "project"]
    autocomplete_fields = ["license", "project"]
    fields = ["license", *ITEM_FIELDSETS_FIELDS, "created_at"]
    readonly_fields = ["created_at"]

    @admin.display(description="organization", ordering="license__organization__name")
    def organization(self, obj):
        return obj.license.organization

    @admin.display(description="quantity")
    def amount(self, obj):
        if obj.quantities:
            return ", ".join(f"{k} {v}" for k, v in obj.quantities.items())
        return obj.quantity if obj.quantity is not None else obj.domain

    @admin.display(description="expires", ordering="license__expires_at")
    def expires_at(self, obj):
        return obj.license.expires_at


# --- projects ----------------------------------------------------------------------------------


class ProjectItemInline(admin.TabularInline):
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
        return (
            super()
            .get_queryset(request)
            .select_related("license")
            .order_by(F("position").asc(nulls_last=True), "license__expires_at", "id")
        )

    @admin.display(description="item")
    def link(self, obj):
        return format_html('<a href="{}">#{}</a>', reverse("admin:licenses_licenseitem_change", args=[obj.pk]), obj.pk)

    @admin.display(description="quantity")
    def amount(self, obj):
        return LicenseItemAdmin.amount(None, obj)

    @admin.display(description="expires")
    def expires_at(self, obj):
        return obj.license.expires_at.strftime("%Y-%m-%d %H:%M UTC")


@admin.register(Project)
class ProjectAdmin(AuditedAdmin):
    list_display = ["name", "organization", "item_count", "licenses", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "organization__id", "organization__name", "license_key"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    fields = ["organization", "name", "license_key", "created_at"]
    readonly_fields = ["license_key", "created_at"]
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


# --- users -------------------------------------------------------------------------------------


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


# --- the audit log -----------------------------------------------------------------------------


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Browse only: nobody, superusers included, can add, change or delete an entry."""

    list_display = ["created_at", "actor_name", "action", "object_type", "object_id", "organization"]
    list_filter = ["action", "object_type", "created_at"]
    search_fields = ["actor_name", "action", "object_id", "organization__id", "organization__name"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    fields = ["created_at", "actor", "actor_name", "action", "object_type", "object_id", "organization", "changes"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="before / after")
    def changes(self, obj):
        before, after = obj.before or {}, obj.after or {}
        keys = list(dict.fromkeys([*before, *after]))
        rows = [
            (
                key,
                _json(before.get(key)) if obj.before is not None else "",
                _json(after.get(key)) if obj.after is not None else "",
            )
            for key in keys
        ]
        return format_html(
            "<table><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>", rows),
        )


def _json(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True)
