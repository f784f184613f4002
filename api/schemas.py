"""Request and response bodies of the device API (SPEC section 6, contract).

Requests are validated strictly (no "3" for 3, no 3.5 for a count): what a field accepts is what
the OpenAPI document says. Anything else is INVALID_REQUEST with a ``fields`` map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, model_validator

from devices.fields import (
    Addon,
    ClientType,
    DeviceUuid,
    OptionalEdition,
    Origin,
    Platform,
    Product,
    SdkVersion,
    SessionPassword,
    Text255,
    ValidationValue,
    field_error,
)
from licenses import rules
from licenses.clock import parse_rfc3339

MAX_COUNT = 1_000_000
MAX_SIGHTINGS = 10_000
MAX_TS_MS = 2**53 - 1  # the largest integer a JavaScript SDK can send exactly


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must contain printable characters only")
    return value


LicenseKey = Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
PageModule = Literal["core", "webcam", "pdfr", "ocr"]
DateTime = Annotated[datetime, BeforeValidator(parse_rfc3339), Field(json_schema_extra={"format": "date-time"})]

assert set(rules.PAGE_MODULES) == set(get_args(PageModule))


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
    edition: OptionalEdition = None
    addon: Addon = Field(None, description='none for the base SDK; "barcode_reader" for the dwt Barcode Reader add-on')
    client_type: ClientType
    origin: Origin = Field(
        None,
        description="required for client_type web: scheme://host[:port]; a browser's Origin header must agree",
        examples=["https://app.example.com"],
    )
    platform: Platform = None
    device_name: Text255 = None
    sdk_version: SdkVersion = None
    session_password: SessionPassword = Field(None, description="required when the project has a session password")
    app_id: ValidationValue = Field(None, description="mobile: checked against the project's allowed app ids")
    process_name: ValidationValue = Field(
        None, description="desktop, embedded, server: checked against the project's allowed process names"
    )

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
    session_password: SessionPassword = None

    def canonical(self) -> dict:
        """The body that identifies a report for idempotency: parsed values, defaults filled in
        (the session password is a credential, not part of the report)."""
        data = self.model_dump(mode="json", exclude={"session_password"})
        data["slot_start"] = self.slot_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data["pages"] = {k: v for k, v in sorted(self.pages.items()) if v}
        return data


class ReleaseRequest(_Request):
    license_key: LicenseKey
    device_uuid: DeviceUuid
    session_password: SessionPassword = None


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
