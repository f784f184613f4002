"""Reads of licenses, items and projects in the shapes other code shows or records."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from . import rules
from .models import License, LicenseItem, Organization, Project


def item_contract(item: LicenseItem) -> dict[str, Any]:
    """An item as the license file and the import output write it (SPEC section 5): id as a
    string, product, option, edition/addon when set, then every field of its option with its
    effective value (defaults filled in)."""
    out: dict[str, Any] = {"id": item.item_id, "product": item.product, "option": item.option}
    if item.edition:
        out["edition"] = item.edition
    if item.addon:
        out["addon"] = item.addon
    for field in ITEM_FIELD_ORDER:
        if field not in rules.OPTION_FIELDS[item.option]:
            continue
        value = getattr(item, field)
        if field == "overuse_budget":
            value = item.effective_overuse_budget
        out[field] = value
    return out


# The order fields appear in the contract output, as in the SPEC's example file.
ITEM_FIELD_ORDER = (
    "quantity",
    "quantities",
    "period",
    "activation_basis",
    "device_grace_percent",
    "dedup_interval_ms",
    "quota_grace_percent",
    "overuse_percent",
    "overuse_budget",
    "heartbeat_timeout_s",
    "domain",
)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def license_snapshot(license: License) -> dict[str, Any]:
    """What the audit log keeps of a license before and after a change."""
    return {
        "license_id": license.license_id,
        "organization_id": license.organization_id,
        "starts_at": _iso(license.starts_at),
        "expires_at": _iso(license.expires_at),
        "status": license.status,
        "renewal_of": license.renewal_of.license_id if license.renewal_of is not None else None,
    }


def item_snapshot(item: LicenseItem) -> dict[str, Any]:
    out: dict[str, Any] = item_contract(item) if item.pk else {"product": item.product, "option": item.option}
    out["license_id"] = item.license.license_id if item.license_id else None
    out["project"] = item.project.name if item.project_id else None
    out["position"] = item.position
    return out


def project_snapshot(project: Project) -> dict[str, Any]:
    return {
        "organization_id": project.organization_id,
        "name": project.name,
        "items_in_order": [i.item_id for i in project.items_in_order()] if project.pk else [],
    }


def organization_snapshot(organization: Organization) -> dict[str, Any]:
    return {"id": organization.id, "name": organization.name}


# Never copied into the audit log.
SECRET_FIELDS = frozenset({"password", "license_key"})


def generic_snapshot(obj: Model) -> dict[str, Any]:
    """Concrete field values of any model instance, JSON-safe, for admin saves of other models."""
    out: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.attname in SECRET_FIELDS:
            continue
        value = getattr(obj, field.attname)
        if hasattr(value, "isoformat"):
            value = _iso(value)
        elif value is not None and not isinstance(value, str | int | float | bool | dict | list):
            value = str(value)
        out[field.attname] = value
    return out


def snapshot(obj: Model | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, License):
        return license_snapshot(obj)
    if isinstance(obj, LicenseItem):
        return item_snapshot(obj)
    if isinstance(obj, Project):
        return project_snapshot(obj)
    if isinstance(obj, Organization):
        return organization_snapshot(obj)
    return generic_snapshot(obj)
