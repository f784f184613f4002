"""The fields of a device request (SPEC section 6), as pydantic types: the device API's schemas
(``api/schemas.py``) and offline registration requests (SPEC section 12, ``devices/offline.py``)
accept exactly the same values, because both are built from these."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, StrictStr
from pydantic_core import PydanticCustomError

from licenses import rules
from licenses.domains import normalize_origin


def field_error(field: str, reason: str) -> PydanticCustomError:
    """A model-level error that is reported under ``fields[field]``."""
    return PydanticCustomError("field_error", "{reason}", {"field": field, "reason": reason})


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


def normalized_origin(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        origin = normalize_origin(value)
    except ValueError as exc:
        raise ValueError(f"is not a valid origin: {exc}") from None
    if len(origin) > 300:  # punycode can make an IDN longer than it was written
        raise ValueError("is longer than 300 characters in its normalized (punycode) form")
    return origin


NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
# scheme://host[:port]: the shape only; the host must also be a valid host name (licenses.domains).
ORIGIN_SHAPE = r"^[A-Za-z][A-Za-z0-9+.-]*://(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)(:[0-9]{1,5})?/?$"

DeviceUuid = Annotated[
    StrictStr,
    Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", examples=["5d0c7a1e-2f7b-4c1e-9a55-0c1d2e3f4a5b"]
    ),
]
Product = Literal["dbr", "dwt", "dlr"]
Edition = Literal["javascript", "mobile", "desktop", "server", "embedded"]
ClientType = Literal["web", "mobile", "desktop", "embedded", "server"]
OptionalEdition = Annotated[Edition | None, BeforeValidator(_empty_to_none)]
Addon = Annotated[
    Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")] | None,
    BeforeValidator(_empty_to_none),
]
Origin = Annotated[
    Annotated[StrictStr, Field(min_length=1, max_length=300, pattern=ORIGIN_SHAPE)] | None,
    AfterValidator(normalized_origin),
]
Platform = Annotated[StrictStr, Field(max_length=64, pattern=NO_CONTROL)] | None
Text255 = Annotated[StrictStr, Field(max_length=255, pattern=NO_CONTROL)] | None
SdkVersion = Annotated[StrictStr, Field(max_length=64, pattern=NO_CONTROL)] | None
# Project protection (SPEC section 6): at most 255 characters each.
SessionPassword = Annotated[StrictStr, Field(max_length=255)] | None
ValidationValue = Annotated[StrictStr, Field(max_length=255, pattern=NO_CONTROL)] | None

assert set(rules.EDITIONS) == set(get_args(Edition)) and set(rules.CLIENT_TYPES) == set(get_args(ClientType))
assert set(rules.PRODUCTS) == set(get_args(Product))
