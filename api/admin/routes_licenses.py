"""Licenses, organizations and the audit log (SPEC section 13). Issuing is for staff tokens
only; an organization token reads its own organization's licenses."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja import Body, Router

from api.admin.auth import CONFLICT, FORBIDDEN, get_visible, require_staff, token_of, visible
from api.admin.common import actor, invalid, time_filter, write
from api.admin.pagination import page
from api.admin.schemas import ERRORS, WRITE_ERRORS, Page
from devices.outcomes import Refusal
from licenses.clock import rfc3339
from licenses.events import license_data
from licenses.models import AuditLog, License, Organization
from licenses.services import LicenseFileError, import_license, set_license_status

router = Router(tags=["licenses"])
STATUS_OF = {"suspend": License.SUSPENDED, "resume": License.ACTIVE, "revoke": License.REVOKED}


@router.post("/licenses", response={201: dict, **WRITE_ERRORS}, summary="Import a license file")
def create_license(request: HttpRequest, payload: dict = Body(..., description="a license file (SPEC section 5)")):  # noqa: B008
    """201 with exactly the JSON ``import_license`` prints. Renewal and added quota are a license
    file naming an existing project of the organization. A ``license_id`` already imported: 409."""
    require_staff(token_of(request), "issuing")
    now = timezone.now()

    def run():
        try:
            return 201, import_license(payload, actor=actor(request), now=now)
        except LicenseFileError as e:
            if e.field == "license_id" and "already imported" in e.message:
                raise Refusal(CONFLICT, e.message) from None
            raise invalid({e.field: e.message}) from None

    return write(request, run, now=now)


@router.get("/licenses", response={200: Page, **ERRORS}, summary="List licenses")
def list_licenses(
    request: HttpRequest,
    organization: str | None = None,
    status: str | None = None,
    project: str | None = None,
    expires_before: str | None = None,
    expires_after: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
):
    qs = visible(License.objects.prefetch_related("items__project"), token_of(request))
    if organization:
        qs = qs.filter(organization_id=organization)
    if status:
        if status not in STATUS_OF.values():
            raise invalid({"status": "must be active, suspended or revoked"})
        qs = qs.filter(status=status)
    if project:
        qs = (
            qs.filter(items__project__name=project).distinct()
            if not (project.isascii() and project.isdigit() and len(project) <= 18)
            else qs.filter(items__project_id=int(project)).distinct()
        )
    before, after = time_filter(expires_before, "expires_before"), time_filter(expires_after, "expires_after")
    if before:
        qs = qs.filter(expires_at__lt=before)
    if after:
        qs = qs.filter(expires_at__gt=after)
    return page(qs, limit=limit, cursor=cursor, render=license_data)


@router.get("/licenses/{license_id}", response={200: dict, **ERRORS}, summary="A license with its items")
def get_license(request: HttpRequest, license_id: str):
    return license_data(get_visible(License.objects.all(), token_of(request), "license", license_id=license_id))


def _status_route(action: str):
    def change(request: HttpRequest, license_id: str):
        token = token_of(request)
        if not token.is_staff_token:
            raise Refusal(FORBIDDEN, f"{action} needs a staff token: organization tokens never issue")
        lic = get_visible(License.objects.all(), token, "license", license_id=license_id)
        now = timezone.now()

        def run():
            from django.core.exceptions import ValidationError

            try:
                changed = set_license_status(license=lic, status=STATUS_OF[action], actor=actor(request), now=now)
            except ValidationError as e:
                raise Refusal(CONFLICT, "; ".join(e.messages)) from None
            return 200, license_data(changed)

        return write(request, run, now=now)

    change.__name__ = f"{action}_license"
    return change


for _action in STATUS_OF:
    router.post(
        f"/licenses/{{license_id}}/{_action}",
        response={200: dict, **WRITE_ERRORS},
        summary=f"{_action.capitalize()} a license" + (" (final)" if _action == "revoke" else ""),
        operation_id=f"{_action}_license",
    )(_status_route(_action))


def organization_data(org: Organization) -> dict:
    return {
        "id": org.id,
        "name": org.name,
        "projects": [{"id": str(p.pk), "name": p.name} for p in org.projects.order_by("name", "pk")],
    }


@router.get(
    "/organizations",
    response={200: Page, **ERRORS},
    summary="Organizations with their projects",
    tags=["organizations"],
)
def list_organizations(request: HttpRequest, limit: int | None = None, cursor: str | None = None):
    qs = visible(Organization.objects.all(), token_of(request), "id").prefetch_related("projects")
    return page(qs, limit=limit, cursor=cursor, render=organization_data)


@router.get("/organizations/{id}", response={200: dict, **ERRORS}, summary="An organization", tags=["organizations"])
def get_organization(request: HttpRequest, id: str):
    return organization_data(get_visible(Organization.objects.all(), token_of(request), "organization", "id", id=id))


def audit_data(row: AuditLog) -> dict:
    return {
        "id": row.pk,
        "created_at": rfc3339(row.created_at),
        "actor": row.actor_name,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "organization_id": row.organization_id,
        "before": row.before,
        "after": row.after,
    }


@router.get("/audit-log", response={200: Page, **ERRORS}, summary="The audit log (staff tokens)", tags=["audit"])
def audit_log(request: HttpRequest, limit: int | None = None, cursor: str | None = None):
    token = token_of(request)
    if not token.is_staff_token:
        raise Refusal(FORBIDDEN, "the audit log needs a staff token")
    return page(AuditLog.objects.all(), limit=limit, cursor=cursor, render=audit_data)
