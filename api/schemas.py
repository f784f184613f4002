"""Request and response bodies of the device API (SPEC section 6, contract).

Requests are validated strictly (no "3" for 3, no 3.5 for a count): what a field accepts is what
the OpenAPI document says. Anything else is INVALID_REQUEST with a ``fields`` map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from licenses import rules
from licenses.clock import parse_rfc3339
from licenses.domains import normalize_origin

MAX_COUNT = 1_000_000
MAX_SIGHTINGS = 10_000
MAX_TS_MS = 2**53 - 1  # the largest integer a JavaScript SDK can send exactly


def field_error(field: str, reason: str) -> PydanticCustomError:
    """A model-level error that the API reports under ``fields[field]``."""
    return PydanticCustomError("field_error", "{reason}", {"field": field, "reason": reason})


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must contain printable characters only")
    return value


def _origin(value: str | None) -> str | None:
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

LicenseKey = Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
DeviceUuid = Annotated[
    StrictStr,
    Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", examples=["5d0c7a1e-2f7b-4c1e-9a55-0c1d2e3f4a5b"]
    ),
]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Product = Literal["dbr", "dwt", "dlr"]
Edition = Literal["javascript", "mobile", "desktop", "server", "embedded"]
ClientType = Literal["web", "mobile", "desktop", "embedded", "server"]
PageModule = Literal["core", "webcam", "pdfr", "ocr"]
DateTime = Annotated[datetime, BeforeValidator(parse_rfc3339), Field(json_schema_extra={"format": "date-time"})]

assert set(rules.EDITIONS) == set(Edition.__args__) and set(rules.CLIENT_TYPES) == set(ClientType.__args__)
assert set(rules.PAGE_MODULES) == set(PageModule.__args__) and set(rules.PRODUCTS) == set(Product.__args__)


class _Request(Schema):
    # Unknown fields are ignored: newer SDKs may send more than this server reads.
    model_config = ConfigDict(extra="ignore")


class AuthorizeRequest(_Request):
    # JSON Schema 2020-12 (OpenAPI 3.1): origin is required when client_type is web.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "if": {"properties": {"client_type": {"const": "web"}}, "required": ["client_type"]},
            "then": {"required": ["origin"], "properties": {"origin": {"type": "string"}}},
        },
    )

    license_key: LicenseKey
    device_uuid: DeviceUuid
    product: Product
    edition: Annotated[Edition | None, BeforeValidator(_empty_to_none)] = None
    addon: Annotated[
        Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")] | None,
        BeforeValidator(_empty_to_none),
    ] = Field(None, description='none for the base SDK; "barcode_reader" for the dwt Barcode Reader add-on')
    client_type: ClientType
    origin: Annotated[
        Annotated[StrictStr, Field(min_length=1, max_length=300, pattern=ORIGIN_SHAPE)] | None, AfterValidator(_origin)
    ] = Field(
        None, description="required for client_type web: scheme://host[:port]", examples=["https://app.example.com"]
    )
    platform: Annotated[StrictStr, Field(max_length=64, pattern=NO_CONTROL)] | None = None
    device_name: Annotated[StrictStr, Field(max_length=255, pattern=NO_CONTROL)] | None = None
    sdk_version: Annotated[StrictStr, Field(max_length=64, pattern=NO_CONTROL)] | None = None

    @model_validator(mode="after")
    def _origin_for_web(self) -> AuthorizeRequest:
        if self.client_type == "web" and not self.origin:
            raise field_error("origin", "is required for client_type web")
        return self


class Sighting(Schema):
    ts_ms: Annotated[StrictInt, Field(ge=0, le=MAX_TS_MS, description="milliseconds since the Unix epoch")]
    frame: Annotated[StrictInt, Field(ge=0, le=MAX_TS_MS)]
    format: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    text: Annotated[StrictStr, Field(max_length=8192)]


class UsageRequest(_Request):
    license_key: LicenseKey
    device_uuid: DeviceUuid
    report_id: Annotated[StrictStr, Field(min_length=1, max_length=64), AfterValidator(_printable)] = Field(
        ..., description="unique per device; a retry with the same body replays the first answer"
    )
    slot_start: DateTime = Field(..., description="start of the 3-minute slot the usage happened in (UTC)")
    barcode_scans: Count = Field(0, description="scans the SDK already deduplicated")
    sightings: Annotated[list[Sighting], Field(max_length=MAX_SIGHTINGS)] = Field(
        default_factory=list, description="raw sightings, deduplicated by the server"
    )
    pages: dict[PageModule, Count] = Field(default_factory=dict, description="pages per dwt module")

    def canonical(self) -> dict:
        """The body that identifies a report for idempotency: parsed values, defaults filled in."""
        data = self.model_dump(mode="json")
        data["slot_start"] = self.slot_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data["pages"] = {k: v for k, v in sorted(self.pages.items()) if v}
        return data


class ReleaseRequest(_Request):
    license_key: LicenseKey
    device_uuid: DeviceUuid


# --- responses ---------------------------------------------------------------------------------


class ErrorDetail(Schema):
    code: int = Field(..., examples=[120])
    name: str = Field(..., examples=["USAGE_EXCEEDED"])
    message: str = Field(..., examples=["30 of 30 seats are taken (grace 3)"])
    fields: dict[str, str] | None = Field(None, description="INVALID_REQUEST only: field -> reason")


class ErrorResponse(Schema):
    error: ErrorDetail


class ItemRef(Schema):
    id: str
    product: Product
    option: Literal[
        "per_barcode_scan", "per_page", "per_client_device", "per_concurrent_device", "per_server", "per_domain"
    ]


class Remaining(Schema):
    """One of {"barcode_scans": n}, {"pages": {...}}, {"seats": n}, {"servers": n} or {}."""

    barcode_scans: int | None = None
    pages: dict[str, int] | None = None
    seats: int | None = None
    servers: int | None = None


class AuthorizeResponse(Schema):
    status: Literal["authorized"]
    device_uuid: str
    item: ItemRef
    active_until: datetime
    report_interval_s: int
    dedup_interval_ms: int | None = Field(None, description="scan items only")
    remaining: Remaining
    local_license: str = Field(..., description="compact JWS (EdDSA), see /.well-known/jwks.json")


class Counted(Schema):
    barcode_scans: int
    pages: dict[str, int]


class UsageResponse(Schema):
    status: Literal["accepted", "duplicate"]
    allowed: bool
    counted: Counted
    active_until: datetime
    remaining: Remaining
    local_license: str | None = Field(None, description="only when allowed")
    error: ErrorDetail | None = Field(None, description="only when not allowed: why the device must stop")


class ReleaseResponse(Schema):
    status: Literal["released"]
