"""The item editor: each option shows its own fields only (SPEC section 5: a field that does not
apply to the item's option is refused), so the add page asks for the option first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .. import rules, selectors
from ..forms import LicenseItemForm
from ..models import LicenseItem, in_term_q
from .base import AuditedAdmin

BASE_FIELDS = ("license", "project", "product", "option", "edition", "addon")

OPTION_HELP = {
    rules.PER_BARCODE_SCAN: "scans: dbr, and dwt's Barcode Reader add-on",
    rules.PER_PAGE: "pages per module: dwt",
    rules.PER_CLIENT_DEVICE: "seats: every product",
    rules.PER_CONCURRENT_DEVICE: "devices per 3-minute slot: every product",
    rules.PER_SERVER: "servers: dbr and dlr, edition server",
    rules.PER_DOMAIN: "one web domain, no quantity: dbr edition javascript, and dwt",
}


def option_fields(option: str) -> list[str]:
    """The fields of an option, in the order the license file writes them."""
    return [f for f in selectors.ITEM_FIELD_ORDER if f in rules.OPTION_FIELDS[option]]


def amount(item: LicenseItem) -> str:
    """What was bought, in a few words: ``30``, ``core 100000, ocr 5000`` or the domain."""
    if item.quantities:
        return ", ".join(f"{k} {v}" for k, v in item.quantities.items())
    return str(item.quantity) if item.quantity is not None else item.domain


class ItemColumns:
    """The columns of an inline that lists items (a license's, a project's): a link to the item's
    own page and what was bought."""

    @admin.display(description="item")
    def link(self, obj):
        return format_html('<a href="{}">#{}</a>', reverse("admin:licenses_licenseitem_change", args=[obj.pk]), obj.pk)

    @admin.display(description="quantity")
    def amount(self, obj):
        return amount(obj)


class ExpiryFilter(admin.SimpleListFilter):
    """Licenses (or items, through their license) by where ``now`` is in their term."""

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
            return queryset.filter(in_term_q(now, via=field))
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

    def chosen_option(self, request, obj=None) -> str | None:
        """The item's option; on the add page, the one chosen first (``?option=``) or posted."""
        if obj is not None:
            return obj.option
        option = request.GET.get("option") or request.POST.get("option")
        return option if option in rules.OPTIONS else None

    def get_fieldsets(self, request, obj=None):
        option = self.chosen_option(request, obj)
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [(None, {"fields": list(BASE_FIELDS)})]
        if option is not None:
            fieldsets.append((f"{option}: {OPTION_HELP[option]}", {"fields": option_fields(option)}))
        fieldsets.append(("Consumption order", {"fields": ["position"]}))
        if obj is not None:
            fieldsets.append((None, {"fields": ["created_at"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # The fields shown depend on the option: another option is another item.
        return ["option", "created_at"] if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and request.GET.get("option") in rules.OPTIONS:
            # Chosen on the first step: the form shows that option's fields, so it stays.
            form.base_fields["option"].initial = request.GET["option"]
            form.base_fields["option"].disabled = True
        return form

    def add_view(self, request, form_url="", extra_context=None):
        if self.chosen_option(request) is None and self.has_add_permission(request):
            return self.choose_option_view(request)
        return super().add_view(request, form_url, extra_context)

    def choose_option_view(self, request):
        """The first step of adding an item: which option it is (no script needed)."""
        keep = [(k, v) for k, v in request.GET.items() if k in ("license", "project", "product")]
        choices = [(o, OPTION_HELP[o]) for o in rules.OPTIONS]
        return TemplateResponse(
            request,
            "admin/licenses/licenseitem/choose_option.html",
            self.staff_context(request, "Add license item: choose its option", choices=choices, keep=keep),
        )

    @admin.display(description="organization", ordering="license__organization__name")
    def organization(self, obj):
        return obj.license.organization

    @admin.display(description="quantity")
    def amount(self, obj):
        return amount(obj)

    @admin.display(description="expires", ordering="license__expires_at")
    def expires_at(self, obj):
        return obj.license.expires_at
