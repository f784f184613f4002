"""The device API (SPEC section 6), served under /api/v1/ (docs at /api/v1/docs).

Views are thin: they read the clock and the client address, apply the rate limits, and call the
services. Checks run in the SPEC's order: body size (413), request shape (400), then the rate
limits (429), key (101), session password (102), device (4), idempotency (409), the project's
validation fields (103, 114; authorize only), the rules of the items. CORS, cookies, chunked
bodies and JSON 404/405 under /api/ are ``api/cors.py``'s. Every refusal has
the SPEC body ``{"error": {"code", "name", "message"}}`` (``fields`` for INVALID_REQUEST): ninja's
default handlers (422 lists, ``{"detail": ...}``, tracebacks) are replaced, so that no input of any
shape gets a 500 or another body.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from api.errors import json_response, refusal_response
from api.ratelimit import check_rate_limit
from api.schemas import (
    AuthorizeRequest,
    AuthorizeResponse,
    ErrorResponse,
    ReleaseRequest,
    ReleaseResponse,
    UsageRequest,
    UsageResponse,
)
from devices import services
from devices.outcomes import INVALID_REQUEST, RATE_LIMITED, Refusal
from licenses.clock import slot_start_problem
from usage.services import record_usage

logger = logging.getLogger(__name__)


class BodyProblem(Exception):
    """A body that is not a JSON object in UTF-8 with Content-Type application/json."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


class StrictJsonParser(Parser):
    """Content-Type application/json, UTF-8, plain JSON (no NaN), valid Unicode strings."""

    def parse_body(self, request: HttpRequest):
        if (request.content_type or "").lower() != "application/json":
            raise BodyProblem("Content-Type", "must be application/json")
        charset = (request.content_params or {}).get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise BodyProblem("Content-Type", "the charset must be utf-8")
        body = request.body
        if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise RequestDataTooBig("body over the limit")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyProblem("body", "is not valid UTF-8") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise BodyProblem("body", "is nested too deeply") from None
        except ValueError as exc:
            raise BodyProblem("body", f"is not valid JSON: {exc}") from None
        if "\\u" in text:  # the text is valid UTF-8: a lone surrogate can only come from a \u escape
            _check_strings(data)
        return data


def _check_strings(data) -> None:
    """Lone surrogates (from \\ud800 escapes) are not Unicode text: no database stores them."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            strings = [value]
        elif isinstance(value, dict):
            strings = list(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            strings = []
            stack.extend(value)
        else:
            continue
        for s in strings:
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                raise BodyProblem("body", "contains a string that is not valid Unicode") from None


api = NinjaAPI(
    title="DLS Admin device API",
    version="1",
    urls_namespace="device-api",
    parser=StrictJsonParser(),
    description=(
        "What SDK clients talk to: authorize a device, report usage every 3 minutes, release a seat. "
        'Every refusal is an HTTP status with the body {"error": {"code", "name", "message"}}; '
        "see docs/device-api.md for the codes and an example session per license option."
    ),
)


def invalid(message: str, fields: dict[str, str] | None = None, *, status: int = 400) -> JsonResponse:
    return refusal_response(Refusal(INVALID_REQUEST, message, fields=fields), status=status)


@api.exception_handler(Refusal)
def _refused(request, exc: Refusal):
    return refusal_response(exc)


# --- exception handlers: SPEC bodies only ------------------------------------------------------


def _field_name(loc) -> str:
    parts = [str(p) for p in loc if p != "[key]"]
    if parts and parts[0] == "body":
        parts = parts[1:]
    if parts and parts[0] == "payload":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _reason(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "is required"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return "must be a JSON object"
    msg = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    for prefix in ("Input should be", "String should", "List should", "Dictionary should"):
        if msg.startswith(prefix):
            msg = "must" + msg.split("should", 1)[1]
    return msg


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    fields: dict[str, str] = {}
    for error in exc.errors:
        ctx = error.get("ctx") or {}
        if error.get("type") == "field_error" and "field" in ctx:
            name, reason = str(ctx["field"]), str(ctx["reason"])
        else:
            name, reason = _field_name(error.get("loc", ())), _reason(error)
            if name == "body" and error.get("type") == "missing":
                reason = "a JSON object is required"
        fields.setdefault(name, reason)
    first = next(iter(fields.items()), ("body", "is invalid"))
    return invalid(f"invalid request: {first[0]} {first[1]}", fields or dict([first]))


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return invalid(f"the body is larger than {limit} bytes", {"body": f"at most {limit} bytes"}, status=413)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    cause = exc.__cause__
    if isinstance(cause, BodyProblem):
        return invalid(f"invalid request: {cause.field} {cause.reason}", {cause.field: cause.reason})
    if isinstance(cause, RequestDataTooBig):
        return _too_big(request, cause)
    if exc.status_code == 400:
        return invalid(str(exc) or "the body cannot be parsed", {"body": "cannot be parsed"})
    return JsonResponse({"error": {"code": 1, "name": "INVALID_REQUEST", "message": str(exc)}}, status=exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return JsonResponse({"error": {"code": 7, "name": "NOT_FOUND", "message": "no such endpoint"}}, status=404)


# --- endpoints ---------------------------------------------------------------------------------

REFUSALS = {400: ErrorResponse, 403: ErrorResponse, 413: ErrorResponse, 429: ErrorResponse}


def _rate_limited(request: HttpRequest, payload) -> JsonResponse | None:
    wait = check_rate_limit(
        license_key=payload.license_key, device_uuid=payload.device_uuid, address=request.META.get("REMOTE_ADDR", "")
    )
    if wait is None:
        return None
    return refusal_response(Refusal(RATE_LIMITED, f"too many requests: retry in {wait} s", retry_after=wait))


@api.post(
    "/authorize",
    response={200: AuthorizeResponse, **REFUSALS},
    summary="Authorize a device",
    description=(
        "Binds the device to the first item of the project, in consumption order, that serves it and has room; "
        "a device already bound to an item that still serves it stays there. 429 code 3 rate limited; 403 codes "
        "in the order they are checked: 101 unknown key, 102 session password missing or wrong, 103 origin outside "
        "the project's allowed domains (or a body origin that is not the browser's Origin header), 114 app_id or "
        "process_name not allowed, 104 no matching item, 111/112/113 license expired / not yet effective / "
        "suspended or revoked, 103 origin outside an item's licensed domain, 120 seats, servers or quota exhausted."
    ),
    operation_id="authorize",
)
def authorize(request: HttpRequest, payload: AuthorizeRequest):
    now = timezone.now()
    origin = request.META.get("HTTP_ORIGIN")
    return _rate_limited(request, payload) or json_response(
        services.authorize(data=payload, now=now, http_origin=origin)
    )


@api.post(
    "/usage",
    response={200: UsageResponse, 409: ErrorResponse, **REFUSALS},
    summary="Report usage (all counts zero: a heartbeat)",
    description=(
        "Recorded whenever the device was ever authorized (403 code 101 unknown key, 102 session password, "
        "4 device never authorized; 409 code 2 report_id reused with another body; 429 code 3 rate limited); "
        "200 with allowed:false and an error (4 seat lost, "
        "111/113 item expired or suspended, 120 quota or concurrency exhausted) tells the SDK to stop. A retry with "
        "the same report_id and body replays the first answer with status duplicate; another body is 409."
    ),
    operation_id="usage",
)
def usage(request: HttpRequest, payload: UsageRequest):
    now = timezone.now()
    problem = slot_start_problem(payload.slot_start, now=now)
    if problem:  # part of the request shape: before the rate limits and the key
        return invalid(f"invalid request: slot_start {problem}", {"slot_start": problem})
    return _rate_limited(request, payload) or json_response(record_usage(data=payload, now=now))


@api.post(
    "/release",
    response={200: ReleaseResponse, **REFUSALS},
    summary="Release a device's seat",
    description=(
        "The device gives its seat back (uninstall). A second call answers the same. 403 codes: 101 unknown key, "
        "102 session password, 4 device never authorized; 429 code 3 rate limited."
    ),
    operation_id="release",
)
def release(request: HttpRequest, payload: ReleaseRequest):
    now = timezone.now()
    return _rate_limited(request, payload) or json_response(services.release(data=payload, now=now))
