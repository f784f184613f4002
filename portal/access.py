"""Who may see and change what in the customer portal (docs/portal.md, "Who sees what").

One rule for every portal view of the three apps: a member of an organization sees its objects;
an owner may also change them; staff see every organization read-only (they act in the admin);
anybody else gets a 404, so that an outsider cannot even learn that an object exists."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from licenses.models import Membership, Organization, Project

STAFF = "staff"  # the role of a staff user in an organization they are not a member of


def logged_in_user(request: HttpRequest) -> User:
    """The user of a portal request. Every portal view is behind ``login_required``; a request
    that reaches an access helper without a logged-in user is an outsider's: 404."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise Http404("No such object")
    return user


def org_roles(request: HttpRequest) -> dict[str, str]:
    """organization id -> role of the logged-in user; one query, cached on the request."""
    cached = getattr(request, "_portal_org_roles", None)
    if cached is None:
        user = logged_in_user(request)
        cached = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
        request._portal_org_roles = cached  # type: ignore[attr-defined]
    return cached


def role_in(request: HttpRequest, organization_id: str) -> str | None:
    role = org_roles(request).get(organization_id)
    if role is None and request.user.is_staff:
        return STAFF
    return role


def can_change(request: HttpRequest, organization_id: str) -> bool:
    return role_in(request, organization_id) == Membership.OWNER


def check_access(request: HttpRequest, organization_id: str, *, change: bool = False) -> str:
    """The user's role in the organization; 404 for outsiders, 403 when a change needs an owner."""
    role = role_in(request, organization_id)
    if role is None:
        raise Http404("No such object")
    if change and role != Membership.OWNER:
        raise PermissionDenied("Only an owner of the organization can change this")
    return role


def get_organization_for(request: HttpRequest, organization_id: str, *, change: bool = False) -> Organization:
    check_access(request, organization_id, change=change)
    return get_object_or_404(Organization, pk=organization_id)


def get_project_for(request: HttpRequest, pk: int, *, change: bool = False) -> Project:
    project = get_object_or_404(Project.objects.select_related("organization"), pk=pk)
    check_access(request, project.organization_id, change=change)
    return project
