"""Issuing: import a license file, renew, add quota, suspend/resume/revoke, reorder, audit.

Every write of the staff's goes through here (the admin, the import command and seed_demo call
the same functions) and leaves an AuditLog row. Services take ``now``; only entry points read
the clock."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model

from . import rules, selectors
from .domains import _psl, is_address_or_localhost, normalize_item_domain
from .models import AuditLog, License, LicenseItem, Organization, Project

DEFAULT_TERM = timedelta(days=365)
MAX_INT = 2_147_483_647  # PositiveIntegerField on PostgreSQL
MAX_PERCENT = 1000

FILE_FIELDS = ("license_id", "organization", "starts_at", "expires_at", "project", "items")
ORGANIZATION_FIELDS = ("id", "name")
ITEM_BASE_FIELDS = ("product", "option", "edition", "addon")
ITEM_OPTION_FIELDS = frozenset().union(*rules.OPTION_FIELDS.values())
ITEM_FIELDS = frozenset(ITEM_BASE_FIELDS) | ITEM_OPTION_FIELDS

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_ORG_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ADDON = re.compile(r"^[a-z0-9_]{1,64}$")


class LicenseFileError(ValueError):
    """A license file that cannot be imported: ``field`` is the path of the offending field
    (``items[2].quantity``), ``message`` the rule it breaks."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- audit ------------------------------------------------------------------------------------


def _actor_fields(actor) -> dict[str, Any]:
    """``actor`` is a user, a plain name (the command line: ``cli:<os user>``), or None (system)."""
    if actor is None:
        return {"actor": None, "actor_name": "system"}
    if isinstance(actor, str):
        return {"actor": None, "actor_name": actor[:150]}
    if getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_name": actor.get_username()[:150]}
    return {"actor": None, "actor_name": "anonymous"}


def _organization_of(obj) -> Organization | None:
    if isinstance(obj, Organization):
        return obj
    if isinstance(obj, LicenseItem):
        return obj.license.organization if obj.license_id else None
    organization_id = getattr(obj, "organization_id", None)
    if organization_id:
        return obj.organization
    return None


def _object_id(obj) -> str:
    if isinstance(obj, License):
        return obj.license_id
    return str(obj.pk)


def record_audit(
    *, actor, action: str, obj, before, after, organization=None, object_id: str | None = None
) -> AuditLog:
    """Append who did what to which object, with its state before and after (JSON-safe dicts).

    ``object_id`` names an object that no longer has a primary key (deleted)."""
    if isinstance(obj, Model):
        object_type = obj._meta.model_name
        object_id = object_id or _object_id(obj)
        organization = organization or _organization_of(obj)
    else:
        object_type, object_id = "", object_id or str(obj)
    return AuditLog.objects.create(
        **_actor_fields(actor),
        action=action,
        object_type=object_type,
        object_id=object_id[:128],
        organization=organization,
        before=before,
        after=after,
    )


# --- the license file -------------------------------------------------------------------------


@dataclass
class LicenseFile:
    license_id: str
    organization_id: str
    organization_name: str | None
    starts_at: datetime
    expires_at: datetime
    project: str
    items: list[dict[str, Any]] = field(default_factory=list)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _unknown(obj: dict, allowed, prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise LicenseFileError(f"{prefix}{key}", "unknown field")


def _string(value: Any, path: str, *, max_length: int, what: str = "a non-empty string") -> str:
    if not isinstance(value, str):
        raise LicenseFileError(path, f"must be {what}, not {_describe(value)}")
    if not value or value != value.strip():
        raise LicenseFileError(path, f"must be {what} without leading or trailing spaces")
    if len(value) > max_length:
        raise LicenseFileError(path, f"must be at most {max_length} characters")
    return value


def _integer(value: Any, path: str, *, minimum: int, maximum: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LicenseFileError(path, f"must be an integer >= {minimum}, not {_describe(value)}")
    if value < minimum:
        raise LicenseFileError(path, f"must be an integer >= {minimum}")
    if value > maximum:
        raise LicenseFileError(path, f"must be an integer <= {maximum}")
    return value


def _choice(value: Any, path: str, choices) -> str:
    if not isinstance(value, str):
        raise LicenseFileError(path, f"must be a string, one of {', '.join(choices)}, not {_describe(value)}")
    if value not in choices:
        raise LicenseFileError(path, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def parse_rfc3339(value: Any, path: str) -> datetime:
    """An RFC 3339 date-time with its offset (``2026-11-01T00:00:00Z``), as an aware UTC datetime."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise LicenseFileError(path, "must be an RFC 3339 date-time with an offset, e.g. 2026-11-01T00:00:00Z")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        parsed = datetime.fromisoformat(text.replace("t", "T"))
    except ValueError as e:
        raise LicenseFileError(path, f"is not a valid date-time ({e})") from None
    return parsed.astimezone(UTC)


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"quantity": 5, "quantity": 500} is ambiguous: refuse it rather than keep the last one.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _load(data: dict | str | bytes) -> dict:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise LicenseFileError("file", f"must be UTF-8 JSON ({e.reason} at byte {e.start})") from None
    if isinstance(data, str):
        try:
            data = json.loads(data, object_pairs_hook=_object_without_duplicate_keys)
        except json.JSONDecodeError as e:
            raise LicenseFileError("file", f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        except _DuplicateKey as e:
            raise LicenseFileError(
                "file", f"malformed JSON: the key {e.args[0]!r} appears twice in one object"
            ) from None
        except RecursionError:
            raise LicenseFileError("file", "malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise LicenseFileError("file", f"must be a JSON object, not {_describe(data)}")
    return data


def validate_item(obj: Any, path: str) -> dict[str, Any]:
    """Check one item of a license file (or of the add-quota form) and return the model fields.

    ``path`` prefixes field names in errors (``items[2]``; empty for a bare item)."""
    prefix = f"{path}." if path else ""
    if not isinstance(obj, dict):
        raise LicenseFileError(path or "item", f"must be an object, not {_describe(obj)}")
    _unknown(obj, ITEM_FIELDS, prefix)
    if "product" not in obj:
        raise LicenseFileError(f"{prefix}product", f"required, one of {', '.join(rules.PRODUCTS)}")
    if "option" not in obj:
        raise LicenseFileError(f"{prefix}option", f"required, one of {', '.join(rules.OPTIONS)}")
    for key in ITEM_BASE_FIELDS:
        if key in obj and not isinstance(obj[key], str):
            raise LicenseFileError(f"{prefix}{key}", f"must be a string, not {_describe(obj[key])}")
    product, option = obj["product"], obj["option"]
    edition, addon = obj.get("edition", ""), obj.get("addon", "")
    if "edition" in obj and edition not in rules.EDITIONS:
        raise LicenseFileError(f"{prefix}edition", f"must be one of {', '.join(rules.EDITIONS)}, not {edition!r}")
    if "addon" in obj and not _ADDON.match(addon):
        raise LicenseFileError(f"{prefix}addon", "must be an add-on name of lower-case letters, digits and '_'")
    present = set(obj) & ITEM_OPTION_FIELDS
    try:
        rules.check_item_fields(product, option, edition, addon, present=present)
    except ValidationError as e:
        name, messages = next(iter(e.message_dict.items()))
        raise LicenseFileError(f"{prefix}{name}", messages[0]) from None

    fields: dict[str, Any] = {"product": product, "option": option, "edition": edition, "addon": addon}
    for key in sorted(present, key=selectors.ITEM_FIELD_ORDER.index):
        value, where = obj[key], f"{prefix}{key}"
        if key in ("quantity", "heartbeat_timeout_s"):
            fields[key] = _integer(value, where, minimum=1)
        elif key in ("overuse_budget", "dedup_interval_ms"):
            fields[key] = _integer(value, where, minimum=0)
        elif key.endswith("_percent"):
            fields[key] = _integer(value, where, minimum=0, maximum=MAX_PERCENT)
        elif key == "period":
            fields[key] = _choice(value, where, tuple(rules.PERIOD_SECONDS))
        elif key == "activation_basis":
            fields[key] = _choice(value, where, rules.ACTIVATION_BASES)
        elif key == "quantities":
            if not isinstance(value, dict) or not value:
                raise LicenseFileError(where, 'must be a non-empty object of page module to pages, e.g. {"core": 1000}')
            for module, pages in value.items():
                if module not in rules.PAGE_MODULES:
                    raise LicenseFileError(
                        f"{where}.{module}", f"unknown page module: must be one of {', '.join(rules.PAGE_MODULES)}"
                    )
                _integer(pages, f"{where}.{module}", minimum=1)
            fields[key] = dict(value)
        elif key == "domain":
            domain = _string(value, where, max_length=255)
            try:
                host = normalize_item_domain(domain)
            except ValueError as e:
                raise LicenseFileError(where, f"must be a host name like example.com or *.example.com ({e})") from None
            if not is_address_or_localhost(host) and _psl().is_public(host):
                # A public suffix (com, co.uk, github.io) is no one's domain: it would match nothing.
                raise LicenseFileError(where, f"{host} is a public suffix, not a registrable domain")
            fields[key] = domain.lower()
    return fields


def parse_license_file(data: dict | str | bytes, *, now: datetime) -> LicenseFile:
    """Every check that needs no database, in the order a reader of the file would make them."""
    doc = _load(data)
    _unknown(doc, FILE_FIELDS, "")
    if "license_id" not in doc:
        raise LicenseFileError("license_id", "required")
    license_id = _string(doc["license_id"], "license_id", max_length=128)

    if "organization" not in doc:
        raise LicenseFileError("organization", 'required, e.g. {"id": "216998", "name": "Acme Corp"}')
    organization = doc["organization"]
    if not isinstance(organization, dict):
        raise LicenseFileError("organization", f"must be an object with id and name, not {_describe(organization)}")
    _unknown(organization, ORGANIZATION_FIELDS, "organization.")
    if "id" not in organization:
        raise LicenseFileError("organization.id", "required")
    organization_id = _string(organization["id"], "organization.id", max_length=64)
    if not _ORG_ID.match(organization_id):
        raise LicenseFileError("organization.id", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    organization_name = None
    if "name" in organization:
        organization_name = _string(organization["name"], "organization.name", max_length=255)

    starts_at = parse_rfc3339(doc["starts_at"], "starts_at") if "starts_at" in doc else now
    expires_at = parse_rfc3339(doc["expires_at"], "expires_at") if "expires_at" in doc else starts_at + DEFAULT_TERM
    if expires_at <= starts_at:
        raise LicenseFileError("expires_at", f"must be after starts_at ({starts_at.isoformat()})")

    if "project" in doc:
        project = _string(doc["project"], "project", max_length=128)
    else:
        project = f"{organization_id}-{license_id}"
        if len(project) > 128:
            raise LicenseFileError("project", f"the default name {project!r} is over 128 characters: give one")

    if "items" not in doc:
        raise LicenseFileError("items", "required: a non-empty list of items")
    items = doc["items"]
    if not isinstance(items, list) or not items:
        raise LicenseFileError("items", f"must be a non-empty list of items, not {_describe(items)}")
    parsed_items = [validate_item(item, f"items[{n}]") for n, item in enumerate(items)]
    return LicenseFile(license_id, organization_id, organization_name, starts_at, expires_at, project, parsed_items)


def _lock_or_create_organization(parsed: LicenseFile) -> tuple[Organization, bool]:
    organization = Organization.objects.select_for_update().filter(id=parsed.organization_id).first()
    if organization is not None:
        return organization, False
    if parsed.organization_name is None:
        raise LicenseFileError("organization.name", "required for a new organization")
    try:
        with transaction.atomic():
            return Organization.objects.create(id=parsed.organization_id, name=parsed.organization_name), True
    except IntegrityError:  # created meanwhile by a concurrent import
        return Organization.objects.select_for_update().get(id=parsed.organization_id), False


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
        elif parsed.organization_name is not None and parsed.organization_name != organization.name:
            before = selectors.snapshot(organization)
            organization.name = parsed.organization_name
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
        for n, fields in enumerate(parsed.items):
            item = LicenseItem(license=license, project=project, **fields)
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
            after={**selectors.snapshot(new), "items": [selectors.item_contract(i) for i in new.items.all()]},
        )
    return new


def add_quota(*, project: Project, license: License, item_fields: dict, actor, now: datetime) -> LicenseItem:
    """A new item on ``license`` in ``project`` (more seats, scans or pages under the same key).

    ``item_fields`` is an item as a license file writes it. Raises ValidationError keyed by field."""
    try:
        fields = validate_item(item_fields, "")
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
