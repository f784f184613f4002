"""Licenses in the admin: the list with the status a person would say, the license page with its
items, and the staff actions (import, renew, add quota, suspend, resume, revoke), each calling
licenses.issuing."""

from __future__ import annotations

import json
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from .. import issuing, rules
from ..forms import AddQuotaForm, LicenseFileForm, RenewForm
from ..license_file import LicenseFileError
from ..models import License, LicenseItem
from .base import AuditedAdmin, ReadOnlyMixin
from .items import OPTION_HELP, ExpiryFilter, ItemColumns

VERBS = {License.SUSPENDED: "suspend", License.ACTIVE: "resume", License.REVOKED: "revoke"}
# What each status change does, in the words of the confirmation pages.
CONSEQUENCES = {
    "suspend": "Suspended, its items serve no device (authorizations fail, usage is still recorded) until it is resumed.",
    "resume": "Resumed, its items serve devices again.",
    "revoke": "Revoked, its items serve no device, for good. A revoked license cannot be resumed, suspended or "
    "renewed.",
}


class LicenseItemInline(ItemColumns, ReadOnlyMixin, admin.TabularInline):
    """A license's items, as bought; each is edited on its own page, where its option's fields are."""

    model = LicenseItem
    extra = 0
    fields = readonly_fields = ("link", "project", "product", "edition", "addon", "option", "amount")
    verbose_name_plural = "items (edit one on its own page; add one with Add item or Add quota)"


def _status_action(status: str, confirm: bool = False):
    """A bulk action on the selected licenses; ``confirm`` first shows what it will do, as Django's
    delete action does, and acts on the confirmation's POST."""
    verb = VERBS[status]

    def action(modeladmin, request, queryset):
        if confirm and not request.POST.get("post"):
            return modeladmin.confirm_bulk_status(request, queryset, status)
        now = timezone.now()
        done = 0
        for license in queryset.order_by("pk"):
            try:
                if license.status != status:
                    issuing.set_license_status(license=license, status=status, actor=request.user, now=now)
                    done += 1
            except ValidationError as e:
                modeladmin.message_user(request, "; ".join(e.messages), messages.ERROR)
        modeladmin.message_user(request, f"{verb.capitalize()}: {done} license(s).", messages.SUCCESS)
        return None

    action.__name__ = f"{verb}_licenses"
    return admin.action(description=f"{verb.capitalize()} the selected licenses", permissions=["change"])(action)


class LicenseAdminForm(forms.ModelForm):
    class Meta:
        model = License
        fields = ["license_id", "organization", "starts_at", "expires_at"]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        starts_at, expires_at = cleaned.get("starts_at"), cleaned.get("expires_at")
        if starts_at and expires_at and expires_at <= starts_at:
            self.add_error("expires_at", "must be after starts_at")
        return cleaned


@admin.register(License)
class LicenseAdmin(AuditedAdmin):
    form = LicenseAdminForm
    list_display = ["license_id", "organization", "state", "starts_at", "expires_at", "item_summary", "projects"]
    list_filter = ["status", ExpiryFilter, "items__product", "items__option", "organization"]
    search_fields = ["license_id", "organization__id", "organization__name", "items__project__name"]
    list_select_related = ["organization"]
    date_hierarchy = "expires_at"
    autocomplete_fields = ["organization"]
    readonly_fields = ["state", "renewal_of", "created_at"]
    fields = ["license_id", "organization", "starts_at", "expires_at", "state", "renewal_of", "created_at"]
    inlines = [LicenseItemInline]
    actions = [
        _status_action(License.SUSPENDED),
        _status_action(License.ACTIVE),
        _status_action(License.REVOKED, confirm=True),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("items__project").distinct()

    @admin.display(description="status", ordering="status")
    def state(self, obj):
        if obj.starts_at is None or obj.expires_at is None:  # the add form: no term yet
            return "-"
        return obj.display_status(timezone.now())

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

    def confirm_bulk_status(self, request, queryset, status: str):
        licenses = list(queryset.select_related("organization").annotate(n_items=Count("items")).order_by("license_id"))
        now, verb = timezone.now(), VERBS[status]
        return TemplateResponse(
            request,
            "admin/licenses/license/bulk_status_confirm.html",
            self.staff_context(
                request,
                f"{verb.capitalize()} {len(licenses)} license(s)?",
                licenses=licenses,
                rows=[(license, license.display_status(now), license.n_items) for license in licenses],
                verb=verb,
                consequence=CONSEQUENCES[verb],
                action=f"{verb}_licenses",
                action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            ),
        )

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = LicenseFileForm(request.POST, request.FILES) if request.method == "POST" else LicenseFileForm()
        if request.method == "POST" and form.is_valid():
            try:
                result = issuing.import_license(form.cleaned_data["data"], actor=request.user, now=timezone.now())
            except LicenseFileError as e:
                form.add_error(None, f"{e.field}: {e.message}")
            else:
                license = License.objects.get(license_id=result["license_id"])
                self.message_user(request, f"Imported {license.license_id}.", messages.SUCCESS)
                return TemplateResponse(
                    request,
                    "admin/licenses/license/import_result.html",
                    self.staff_context(
                        request,
                        f"Imported {license.license_id}",
                        license=license,
                        result_json=json.dumps(result, indent=2),
                    ),
                )
        return TemplateResponse(
            request, "admin/licenses/license/import.html", self.staff_context(request, "Import license file", form=form)
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

        def renew() -> tuple[str, int]:
            new = issuing.renew_license(
                license=license,
                expires_at=form.cleaned_data["expires_at"],
                starts_at=form.cleaned_data["starts_at"],
                license_id=form.cleaned_data["license_id"] or None,
                actor=request.user,
                now=now,
            )
            return f"Renewed {license.license_id} as {new.license_id}; the keys are unchanged.", new.pk

        return self._staff_form(request, license, form, title=f"Renew {license.license_id}", action="renew", act=renew)

    def add_quota_view(self, request, object_id):
        license = self._license_or_404(request, object_id)
        option = request.GET.get("option")
        if request.method != "POST" and option not in rules.OPTIONS:
            # Each option has its own fields: ask which one first, as the item editor does.
            return TemplateResponse(
                request,
                "admin/licenses/licenseitem/choose_option.html",
                self.staff_context(
                    request,
                    f"Add quota to {license.license_id}: choose the option",
                    choices=[(o, OPTION_HELP[o]) for o in rules.OPTIONS],
                    keep=[],
                    license=license,
                ),
            )
        form = AddQuotaForm(request.POST if request.method == "POST" else None, license=license, option=option)

        def add() -> tuple[str, int]:
            item = issuing.add_quota(
                project=form.cleaned_data["project"],
                license=license,
                item_fields=form.item_fields(),
                actor=request.user,
                now=timezone.now(),
            )
            return f"Added item {item.item_id} to {item.project.name}.", license.pk

        title = f"Add quota to {license.license_id}"
        return self._staff_form(request, license, form, title=title, action="add", act=add)

    def _staff_form(self, request, license, form, *, title: str, action: str, act: Callable[[], tuple[str, int]]):
        """The renew and add-quota pages: a valid POST runs ``act`` (the issuing service) and goes
        to the license it names with its message; a refusal shows its rule on the form, nothing
        written."""
        if request.method == "POST" and form.is_valid():
            try:
                message, license_pk = act()
            except ValidationError as e:
                _add_errors(form, e)
            else:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[license_pk]))
        return TemplateResponse(
            request,
            "admin/licenses/license/staff_form.html",
            self.staff_context(request, title, form=form, license=license, action=action),
        )

    def status_view(self, request, object_id):
        """GET asks for confirmation (no script needed: the CSP allows none inline); POST acts."""
        license = self._license_or_404(request, object_id)
        status = request.POST.get("status") if request.method == "POST" else request.GET.get("status", "")
        verb = VERBS.get(status)
        if verb is None:
            self.message_user(request, f"Unknown status {status!r}.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[license.pk]))
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/licenses/license/status_confirm.html",
                self.staff_context(
                    request,
                    f"{verb.capitalize()} {license.license_id}",
                    license=license,
                    status=status,
                    verb=verb,
                    consequence=CONSEQUENCES[verb],
                    state=license.display_status(timezone.now()),
                ),
            )
        try:
            issuing.set_license_status(license=license, status=status, actor=request.user, now=timezone.now())
        except ValidationError as e:
            self.message_user(request, "; ".join(e.messages), messages.ERROR)
        else:
            self.message_user(request, f"{license.license_id} is now {license.status}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:licenses_license_change", args=[license.pk]))


def _add_errors(form, error: ValidationError) -> None:
    for name, msgs in error.message_dict.items():
        for msg in msgs:
            form.add_error(name if name in form.fields else None, msg)
