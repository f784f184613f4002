"""Issuing: import a license file, renew, add quota, suspend/resume/revoke, reorder (SPEC 5).

Every write of the staff's goes through here (the admin, the import command and seed_demo call
the same functions) and leaves an AuditLog row. Services take ``now``; only entry points read
the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import selectors
from .audit import record_audit
from .events import STATUS_EVENTS, emit, license_data
from .license_file import LicenseFile, LicenseFileError, parse_item, parse_license_file
from .models import License, LicenseItem, Organization, Project


def _lock_or_create_organization(parsed: LicenseFile) -> tuple[Organization, bool]:
    organization_id, name = parsed.organization.id, parsed.organization.name
    organization = Organization.objects.select_for_update().filter(id=organization_id).first()
    if organization is not None:
        return organization, False
    if name is None:
        raise LicenseFileError("organization.name", "required for a new organization")
    try:
        with transaction.atomic():
            return Organization.objects.create(id=organization_id, name=name), True
    except IntegrityError:  # created meanwhile by a concurrent import
        return Organization.objects.select_for_update().get(id=organization_id), False


def _get_or_create_project(organization: Organization, name: str) -> tuple[Project, bool]:
    project = Project.objects.filter(organization=organization, name=name).first()
    if project:
        return project, False
    try:
        with transaction.atomic():
            return Project.objects.create(organization=organization, name=name), True
    except IntegrityError:  # created meanwhile by another import
        return Project.objects.get(organization=organization, name=name), False


def _save_item(item: LicenseItem, path: str) -> None:
    try:
        item.save()
    except ValidationError as e:
        name, messages = next(iter(e.message_dict.items()))
        raise LicenseFileError(f"{path}.{name}" if path else name, messages[0]) from None


def import_license(data: dict | str | bytes, *, actor=None, now: datetime) -> dict[str, Any]:
    """Import a license file (SPEC section 5), all or nothing; return the contract output object.

    Raises LicenseFileError naming the field and the rule; then nothing was written."""
    parsed = parse_license_file(data, now=now)
    with transaction.atomic():
        if License.objects.filter(license_id=parsed.license_id).exists():
            raise LicenseFileError("license_id", f"{parsed.license_id!r} was already imported")
        organization, organization_created = _lock_or_create_organization(parsed)
        if organization_created:
            record_audit(
                actor=actor,
                action="organization.create",
                obj=organization,
                before=None,
                after=selectors.snapshot(organization),
            )
        elif parsed.organization.name is not None and parsed.organization.name != organization.name:
            before = selectors.snapshot(organization)
            organization.name = parsed.organization.name
            organization.save(update_fields=["name"])
            record_audit(
                actor=actor,
                action="organization.rename",
                obj=organization,
                before=before,
                after=selectors.snapshot(organization),
            )
        project, project_created = _get_or_create_project(organization, parsed.project)
        try:
            with transaction.atomic():
                license = License.objects.create(
                    license_id=parsed.license_id,
                    organization=organization,
                    starts_at=parsed.starts_at,
                    expires_at=parsed.expires_at,
                )
        except IntegrityError:  # imported meanwhile by a concurrent import
            raise LicenseFileError("license_id", f"{parsed.license_id!r} was already imported") from None
        items = []
        for n, parsed_item in enumerate(parsed.items):
            item = LicenseItem(license=license, project=project, **parsed_item.fields())
            _save_item(item, f"items[{n}]")
            items.append(item)
        result = {
            "license_id": license.license_id,
            "organization_id": organization.id,
            "project": project.name,
            "license_key": project.license_key,
            "items": [selectors.item_contract(item) for item in items],
        }
        record_audit(
            actor=actor,
            action="license.import",
            obj=license,
            before=None,
            # The key itself stays out of the log: the log is not a place to collect secrets.
            after={
                **{k: v for k, v in result.items() if k != "license_key"},
                "project_created": project_created,
                **_term(license),
            },
        )
        emit("license.created", license_data(license), organization=organization, now=now)  # SPEC 14
    return result


def _term(license: License) -> dict[str, Any]:
    snap = selectors.license_snapshot(license)
    return {"starts_at": snap["starts_at"], "expires_at": snap["expires_at"], "status": snap["status"]}


# --- staff actions on licenses ------------------------------------------------------------------


def renew_license(
    *,
    license: License,
    expires_at: datetime,
    starts_at: datetime | None = None,
    license_id: str | None = None,
    actor,
    now: datetime,
) -> License:
    """A new term for the same purchase: a new license whose items (copies of the old license's)
    join the same projects, so every license key stays the same.

    ``starts_at`` defaults to the old term's end, or now if that has passed; ``license_id`` to
    ``<old id>-R<n>``. Raises ValidationError keyed by field."""
    with transaction.atomic():
        old = License.objects.select_for_update().get(pk=license.pk)
        if old.status == License.REVOKED:
            raise ValidationError({"license": "a revoked license cannot be renewed"})
        starts_at = starts_at or max(old.expires_at, now)
        if expires_at <= starts_at:
            raise ValidationError({"expires_at": f"must be after starts_at ({starts_at.isoformat()})"})
        if license_id is None:
            n = old.renewals.count() + 1
            while License.objects.filter(license_id=f"{old.license_id}-R{n}").exists():
                n += 1
            license_id = f"{old.license_id}-R{n}"
        license_id = license_id.strip()
        if not license_id or len(license_id) > 128:
            raise ValidationError({"license_id": "must be 1 to 128 characters"})
        if License.objects.filter(license_id=license_id).exists():
            raise ValidationError({"license_id": f"{license_id!r} already exists"})
        new = License.objects.create(
            license_id=license_id,
            organization_id=old.organization_id,
            starts_at=starts_at,
            expires_at=expires_at,
            renewal_of=old,
        )
        for item in old.items.order_by("id"):
            item.pk = None
            item._state.adding = True
            item.license = new
            item.position = None
            item.save()
        record_audit(
            actor=actor,
            action="license.renew",
            obj=new,
            before=selectors.snapshot(old),
            after={**selectors.license_snapshot(new), "items": [selectors.item_contract(i) for i in new.items.all()]},
        )
        emit("license.created", license_data(new), organization=new.organization_id, now=now)  # SPEC 14
    return new


def add_quota(*, project: Project, license: License, item_fields: dict, actor, now: datetime) -> LicenseItem:
    """A new item on ``license`` in ``project`` (more seats, scans or pages under the same key).

    ``item_fields`` is an item as a license file writes it. Raises ValidationError keyed by field."""
    try:
        fields = parse_item(item_fields)
    except LicenseFileError as e:
        message = f"{e.field}: {e.message}" if "." in e.field else e.message
        raise ValidationError({e.field.split(".")[0]: message}) from None
    if project.organization_id != license.organization_id:
        raise ValidationError({"project": "the project belongs to another organization than the license"})
    with transaction.atomic():
        license = License.objects.select_for_update().get(pk=license.pk)
        if license.status == License.REVOKED:
            raise ValidationError({"license": "quota cannot be added to a revoked license"})
        if license.expires_at <= now:
            raise ValidationError({"license": "quota cannot be added to an expired license: renew it"})
        item = LicenseItem.objects.create(license=license, project=project, **fields)
        record_audit(actor=actor, action="item.add_quota", obj=item, before=None, after=selectors.snapshot(item))
    return item


STATUS_ACTIONS = {
    License.ACTIVE: "license.resume",
    License.SUSPENDED: "license.suspend",
    License.REVOKED: "license.revoke",
}


def set_license_status(*, license: License, status: str, actor, now: datetime) -> License:
    """Suspend (``suspended``), resume (``active``) or revoke (``revoked``, final) a license."""
    if status not in STATUS_ACTIONS:
        raise ValidationError({"status": f"must be one of {', '.join(STATUS_ACTIONS)}"})
    with transaction.atomic():
        locked = License.objects.select_for_update().get(pk=license.pk)
        if locked.status == status:
            return locked
        if locked.status == License.REVOKED:
            raise ValidationError({"status": f"{locked.license_id} is revoked: a revoked license cannot be changed"})
        before = selectors.snapshot(locked)
        locked.status = status
        locked.save(update_fields=["status"])
        record_audit(
            actor=actor, action=STATUS_ACTIONS[status], obj=locked, before=before, after=selectors.snapshot(locked)
        )
        emit(STATUS_EVENTS[status], license_data(locked), organization=locked.organization_id, now=now)  # SPEC 14
    license.status = status
    return locked


def reorder_items(*, project: Project, item_ids: list[str], actor, now: datetime) -> None:
    """Set the consumption order: the listed items get positions 0..n-1 in that order; items not
    listed come after them, by expiry. Refuses ids that are not items of this project."""
    wanted: list[int] = []
    for raw in item_ids:
        text = str(raw).strip()
        if not text.isdigit():
            raise ValidationError({"item_ids": f"{raw!r} is not an item id"})
        if int(text) in wanted:
            raise ValidationError({"item_ids": f"item {text} is listed twice"})
        wanted.append(int(text))
    with transaction.atomic():
        items = {i.pk: i for i in LicenseItem.objects.select_for_update().filter(project=project)}
        for pk in wanted:
            if pk not in items:
                raise ValidationError({"item_ids": f"item {pk} is not an item of project {project.name}"})
        before = selectors.snapshot(project)
        for pk, item in items.items():
            position = wanted.index(pk) if pk in wanted else None
            if item.position != position:
                LicenseItem.objects.filter(pk=pk).update(position=position)
        after = selectors.snapshot(project)
        if before != after:
            record_audit(actor=actor, action="project.reorder", obj=project, before=before, after=after)
