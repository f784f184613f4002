"""What every admin page of the licenses app shares: the audit of plain admin saves, read-only
pages, and the confirmation pages of staff actions."""

from __future__ import annotations

from django.contrib import admin

from .. import audit, selectors
from ..models import Organization

ACTION_NAMES = {"licenseitem": "item"}


def _action(obj, verb: str) -> str:
    name = obj._meta.model_name
    return f"{ACTION_NAMES.get(name, name)}.{verb}"


def _audit_delete(request, obj, *, before, object_id: str | None, organization=None) -> None:
    """A deletion in the log: what the object was and its id (both read before it went)."""
    audit.record_audit(
        actor=request.user,
        action=_action(obj, "delete"),
        obj=obj,
        before=before,
        after=None,
        organization=organization,
        object_id=object_id,
    )


def _fresh_snapshot(obj):
    fresh = type(obj)._default_manager.filter(pk=obj.pk).first() if obj.pk is not None else None
    return selectors.snapshot(fresh)


class ReadOnlyMixin:
    """For an admin or inline that only shows: nobody, superusers included, adds, changes or
    deletes through it."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
            audit.record_audit(
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
        _audit_delete(request, obj, before=before, object_id=object_id, organization=organization)

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
            audit.record_audit(
                actor=request.user, action=_action(obj, "add"), obj=obj, before=None, after=selectors.snapshot(obj)
            )
        for obj, _changed in formset.changed_objects:
            before = befores.get(id(obj), (None, None))[1]
            audit.record_audit(
                actor=request.user, action=_action(obj, "change"), obj=obj, before=before, after=selectors.snapshot(obj)
            )
        for obj in formset.deleted_objects:
            object_id, before = befores.get(id(obj), (None, None))
            organization = form.instance if isinstance(form.instance, Organization) else None
            _audit_delete(request, obj, before=before, object_id=object_id, organization=organization)

    def staff_context(self, request, title: str, **extra):
        """The context of a staff page of this admin (import, renew, confirmations)."""
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}
