"""Template filters of the portal: one date format, thousands separators, decisions in words."""

from __future__ import annotations

from django import template

from portal import explain as explaining

register = template.Library()


@register.filter
def explain(decision) -> str:
    """A decision in words (portal.explain.explain)."""
    return explaining.explain(decision)


@register.filter
def rule_label(rule: str) -> str:
    return explaining.rule_label(rule)


@register.filter
def when(dt) -> str:
    """The portal's one date-time format: 2026-11-27 14:02 UTC."""
    return explaining.when(dt)


@register.filter
def stamp(dt):
    """A date-time as a <time> element in the one format; static/js/portal.js rewrites it into
    the reader's local time when they choose "local" (the footer's toggle)."""
    from datetime import UTC

    from django.utils.html import format_html

    if dt is None:
        return ""
    return format_html(
        '<time datetime="{}" data-utc>{}</time>',
        dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        explaining.when(dt),
    )


@register.inclusion_tag("partials/staff_banner.html", takes_context=True)
def staff_banner(context):
    """The banner of a staff user reading an organization they are not a member of (SPEC 10:
    "any customer's portal pages, read-only, as that customer sees them")."""
    from portal.access import STAFF, role_in

    request = context.get("request")
    project = context.get("project")
    organization = getattr(project, "organization", None) or context.get("organization")
    show = bool(
        request is not None
        and request.user.is_authenticated
        and request.user.is_staff
        and organization is not None
        and getattr(organization, "pk", None)
        and role_in(request, organization.pk) == STAFF
    )
    return {"show": show, "organization": organization}
