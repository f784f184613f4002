"""The license file (SPEC section 5, contract) as a pydantic model.

pydantic checks the shape: required and unknown fields, JSON types (strict: ``"30"``, ``2.5`` and
``true`` are not quantities), integer ranges, choices, RFC 3339 times. The item's own rules (the
applicability table, fields of another option, the licensed domain) are the model's
(``LicenseItem.validate_rules``), run from here so the admin and the import say the same words.
``LicenseFileError`` names the first offending field as a path (``items[2].quantity``) and the
rule it breaks; the import command prints ``error: <field>: <rule>``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import rules
from .clock import parse_rfc3339
from .models import LicenseItem

DEFAULT_TERM = timedelta(days=365)


class LicenseFileError(ValueError):
    """A license file that cannot be imported: ``field`` is the path of the offending field
    (``items[2].quantity``), ``message`` the rule it breaks."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _rule(message: str, field: str | None = None) -> PydanticCustomError:
    # The message goes in the context: license file rules quote JSON, whose braces a template eats.
    return PydanticCustomError("license_file", "{message}", {"message": message, "field": field})


def _rfc3339(value: Any) -> datetime:
    try:
        return parse_rfc3339(value)
    except ValueError as e:
        raise _rule(str(e)) from None


def _int(field: str):
    low, high = rules.FIELD_BOUNDS[field]
    return Annotated[StrictInt, Field(ge=low, le=high)]


# A non-empty string without leading or trailing spaces, at most ``n`` characters.
def _text(n: int):
    return Annotated[StrictStr, Field(min_length=1, max_length=n, pattern=r"^\S(?:[\s\S]*\S)?$")]


Time = Annotated[Any, AfterValidator(_rfc3339)]  # licenses.clock is the one RFC 3339 parser
PageModule = Literal[rules.PAGE_MODULES]  # type: ignore[valid-type]

# A field left out is None; pydantic does not validate defaults, so an explicit null is refused.
_ABSENT: Any = None


class Organization(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    name: _text(255) = _ABSENT  # type: ignore[valid-type]


class Item(BaseModel):
    """One item as a license file writes it; ``fields()`` gives the model's fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    product: StrictStr
    option: StrictStr
    edition: Literal[rules.EDITIONS] = _ABSENT  # type: ignore[valid-type]
    addon: StrictStr = _ABSENT
    quantity: _int("quantity") = _ABSENT  # type: ignore[valid-type]
    quantities: Annotated[
        dict[PageModule, Annotated[StrictInt, Field(ge=rules.PAGES_BOUNDS[0], le=rules.PAGES_BOUNDS[1])]],
        Field(min_length=1),
    ] = _ABSENT
    period: Literal[tuple(rules.PERIOD_SECONDS)] = _ABSENT  # type: ignore[valid-type]
    activation_basis: Literal[rules.ACTIVATION_BASES] = _ABSENT  # type: ignore[valid-type]
    device_grace_percent: _int("device_grace_percent") = _ABSENT  # type: ignore[valid-type]
    dedup_interval_ms: _int("dedup_interval_ms") = _ABSENT  # type: ignore[valid-type]
    quota_grace_percent: _int("quota_grace_percent") = _ABSENT  # type: ignore[valid-type]
    overuse_percent: _int("overuse_percent") = _ABSENT  # type: ignore[valid-type]
    overuse_budget: _int("overuse_budget") = _ABSENT  # type: ignore[valid-type]
    heartbeat_timeout_s: _int("heartbeat_timeout_s") = _ABSENT  # type: ignore[valid-type]
    domain: _text(255) = _ABSENT  # type: ignore[valid-type]

    _fields: dict[str, Any] = PrivateAttr(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return self._fields

    @model_validator(mode="after")
    def _item_rules(self) -> Item:
        # The fields the file names: a field of another option is refused even at its default.
        present = self.model_fields_set & frozenset().union(*rules.OPTION_FIELDS.values())
        fields: dict[str, Any] = {
            "product": self.product,
            "option": self.option,
            "edition": self.edition or "",
            "addon": self.addon or "",
        }
        fields.update({name: getattr(self, name) for name in sorted(present)})
        item = LicenseItem(**fields)
        try:
            item.validate_rules(present=present)
        except DjangoValidationError as e:
            name, messages = next(iter(e.message_dict.items()))
            raise _rule(messages[0], field=name) from None
        if "domain" in present:
            fields["domain"] = item.domain  # as the model normalizes it
        self._fields = fields
        return self


class LicenseFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    license_id: _text(128)  # type: ignore[valid-type]
    organization: Organization
    starts_at: Time = _ABSENT
    expires_at: Time = _ABSENT
    project: _text(128) = _ABSENT  # type: ignore[valid-type]
    items: Annotated[list[Item], Field(min_length=1)]

    def with_defaults(self, now: datetime) -> LicenseFile:
        """``starts_at`` now, ``expires_at`` a year later, ``project`` ``<organization id>-<license_id>``
        (SPEC section 5); refuses an end not after the start."""
        starts_at = self.starts_at or now
        expires_at = self.expires_at or starts_at + DEFAULT_TERM
        if expires_at <= starts_at:
            raise LicenseFileError("expires_at", f"must be after starts_at ({starts_at.isoformat()})")
        project = self.project
        if project is None:
            project = f"{self.organization.id}-{self.license_id}"
            if len(project) > 128:
                raise LicenseFileError("project", f"the default name {project!r} is over 128 characters: give one")
        return self.model_copy(update={"starts_at": starts_at, "expires_at": expires_at, "project": project})


# --- errors in the contract's words ----------------------------------------------------------

MISSING = {
    "license_id": "required",
    "organization": 'required, e.g. {"id": "216998", "name": "Acme Corp"}',
    "id": "required",
    "items": "required: a non-empty list of items",
    "product": f"required, one of {', '.join(rules.PRODUCTS)}",
    "option": f"required, one of {', '.join(rules.OPTIONS)}",
}
CHOICES = {
    "edition": rules.EDITIONS,
    "period": tuple(rules.PERIOD_SECONDS),
    "activation_basis": rules.ACTIVATION_BASES,
}
ITEM_STRINGS = ("product", "option", "edition", "addon")
PAGES_RULE = 'must be a non-empty object of page module to pages, e.g. {"core": 1000}'


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


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Mapping[str, Any], names: list[str]) -> str:
    """The contract's words for one pydantic error; ``names`` are the field names of its path."""
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    name = names[-1] if names else ""
    parent = names[-2] if len(names) > 1 else ""
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return MISSING.get(name, "required")
    if kind == "model_type":
        if name == "organization":
            return f"must be an object with id and name, not {_describe(value)}"
        return f"must be an object, not {_describe(value)}"
    if name == "items" and kind in ("list_type", "too_short"):
        return f"must be a non-empty list of items, not {_describe(value)}"
    if name == "quantities" and kind in ("dict_type", "too_short"):
        return PAGES_RULE
    if error["loc"][-1] == "[key]":
        return f"unknown page module: must be one of {', '.join(rules.PAGE_MODULES)}"
    integer = parent == "quantities" or name in rules.FIELD_BOUNDS
    if integer:
        low = rules.PAGES_BOUNDS[0] if parent == "quantities" else rules.FIELD_BOUNDS[name][0]
        if kind == "int_type":
            return f"must be an integer >= {low}, not {_describe(value)}"
        if kind == "less_than_equal":
            return f"must be an integer <= {ctx['le']}"
        return f"must be an integer >= {low}"
    if name in CHOICES and kind == "literal_error":
        choices = ", ".join(CHOICES[name])
        if not isinstance(value, str):
            if name == "edition":
                return f"must be a string, not {_describe(value)}"
            return f"must be a string, one of {choices}, not {_describe(value)}"
        return f"must be one of {choices}, not {value!r}"
    if name in ITEM_STRINGS and parent != "organization":
        return f"must be a string, not {_describe(value)}"
    if name == "id" and kind == "string_pattern_mismatch":
        return "must be 1 to 64 letters, digits, '.', '_' or '-'"
    if kind == "string_type":
        return f"must be a non-empty string, not {_describe(value)}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind in ("string_pattern_mismatch", "string_too_short"):
        return "must be a non-empty string without leading or trailing spaces"
    return error["msg"]


def _first_error(e: ValidationError) -> LicenseFileError:
    error = e.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    if error["type"] == "license_file":
        field = (error.get("ctx") or {}).get("field")
        if field:
            loc = (*loc, field)
        return LicenseFileError(_path(loc) or "item", error["ctx"]["message"])
    names = [p for p in loc if isinstance(p, str) and p != "[key]"]
    return LicenseFileError(_path(loc) or "item", _message(error, names))


# --- reading -----------------------------------------------------------------------------------


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


def load_json(data: dict | str | bytes) -> dict:
    """The file's JSON object; duplicate keys, malformed JSON and non-objects are refused."""
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


def parse_license_file(data: dict | str | bytes, *, now: datetime) -> LicenseFile:
    """Every check that needs no database; defaults filled in. Raises LicenseFileError."""
    try:
        parsed = LicenseFile.model_validate(load_json(data))
    except ValidationError as e:
        raise _first_error(e) from None
    return parsed.with_defaults(now)


def parse_item(data: Any) -> dict[str, Any]:
    """One item as a license file writes it (the admin's add-quota form), as model fields.
    Errors name the bare field (``quantity``)."""
    try:
        return Item.model_validate(data).fields()
    except ValidationError as e:
        raise _first_error(e) from None
