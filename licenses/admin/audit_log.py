"""The audit log in the admin: browse only."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from ..models import AuditLog
from .base import ReadOnlyMixin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Browse only: nobody, superusers included, can add, change or delete an entry."""

    list_display = ["created_at", "actor_name", "action", "object_type", "object_id", "organization"]
    list_filter = ["action", "object_type", "created_at"]
    search_fields = ["actor_name", "action", "object_id", "organization__id", "organization__name"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    fields = readonly_fields = (
        "created_at",
        "actor",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "organization",
        "changes",
    )

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
