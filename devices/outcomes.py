"""What a device request comes to, in the domain's words: a ``Verdict`` per item looked at, and a
``Refusal`` (an exception) carrying the SPEC section 6 code, the rule and the counts. Services
raise ``Refusal`` or return their answer; only the JSON APIs (``api/``) know HTTP statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from licenses.models import LicenseItem

# SPEC section 6 (and 13 for 5-8): code -> name. Codes from 100 up are DLS's own numbers.
CODE_NAMES: dict[int, str] = {
    1: "INVALID_REQUEST",
    2: "IDEMPOTENCY_CONFLICT",
    3: "RATE_LIMITED",
    4: "DEVICE_NOT_AUTHORIZED",
    5: "UNAUTHENTICATED",
    6: "FORBIDDEN",
    7: "NOT_FOUND",
    8: "CONFLICT",
    101: "LICENSE_KEY_INVALID",
    102: "SESSION_PASSWORD_INVALID",
    103: "DOMAIN_MISMATCH",
    104: "NO_MATCHING_LICENSE",
    111: "LICENSE_EXPIRED",
    112: "LICENSE_NOT_YET_EFFECTIVE",
    113: "LICENSE_REVOKED",
    114: "VALIDATION_FIELD_MISMATCH",
    120: "USAGE_EXCEEDED",
}
INVALID_REQUEST = 1
IDEMPOTENCY_CONFLICT = 2
RATE_LIMITED = 3
DEVICE_NOT_AUTHORIZED = 4
LICENSE_KEY_INVALID = 101
SESSION_PASSWORD_INVALID = 102
DOMAIN_MISMATCH = 103
NO_MATCHING_LICENSE = 104
LICENSE_EXPIRED = 111
LICENSE_NOT_YET_EFFECTIVE = 112
LICENSE_REVOKED = 113
VALIDATION_FIELD_MISMATCH = 114
USAGE_EXCEEDED = 120
TERM_CODES = (LICENSE_EXPIRED, LICENSE_NOT_YET_EFFECTIVE, LICENSE_REVOKED)  # the item is not usable


def error_detail(code: int, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """The SPEC section 6 error object: ``{"code", "name", "message"}`` (+ ``fields`` for 1)."""
    detail: dict[str, Any] = {"code": code, "name": CODE_NAMES[code], "message": message}
    if fields:
        detail["fields"] = fields
    return detail


@dataclass
class Verdict:
    """The outcome of checking one item (or the request itself) for one device request."""

    item: LicenseItem | None
    allowed: bool
    rule: str
    message: str = ""
    code: int | None = None
    counts: dict[str, Any] = field(default_factory=dict)


class Refusal(Exception):
    """A device request refused with a SPEC code: raised by services, mapped to HTTP by ``api``."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        retry_after: int | None = None,
        rule: str = "",
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.fields, self.retry_after, self.rule = code, message, fields, retry_after, rule

    @classmethod
    def of(cls, verdict: Verdict) -> Refusal:
        assert verdict.code is not None
        return cls(verdict.code, verdict.message, rule=verdict.rule)

    @property
    def name(self) -> str:
        return CODE_NAMES[self.code]

    def detail(self) -> dict[str, Any]:
        return error_detail(self.code, self.message, self.fields)
