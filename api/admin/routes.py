"""The admin API (SPEC section 13) at /api/admin/v1/: a second NinjaAPI beside the device API,
with its error body and the same services as the admin and the portal. Routes live in
``routes_licenses``, ``routes_projects`` and ``routes_webhooks``; this module holds the API, its
authentication and its error handlers."""

from __future__ import annotations

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from api.admin.auth import NOT_FOUND, UNAUTHENTICATED, TokenAuth
from api.device import StrictJsonParser, _http_error, _too_big, _validation_error
from api.errors import refusal_response
from devices.outcomes import Refusal

api = NinjaAPI(
    title="DLS Admin admin API",
    version="1",
    urls_namespace="admin-api",
    parser=StrictJsonParser(),
    auth=TokenAuth(),
    description=(
        "For the vendor's systems (order desk, CRM, checkout, BI) and customers' automation: issue, renew, add "
        "quota, suspend, revoke; projects, devices, usage, decisions, the audit log and webhooks. "
        "`Authorization: Bearer <token>`; writes accept `Idempotency-Key`. Errors have the device API's body "
        '{"error": {"code", "name", "message"}}. See docs/admin-api.md.'
    ),
)


@api.exception_handler(Refusal)
def _refused(request, exc: Refusal):
    return refusal_response(exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return refusal_response(Refusal(UNAUTHENTICATED, "missing token: send Authorization: Bearer <token>"))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return refusal_response(Refusal(NOT_FOUND, "no such object"))


api.add_exception_handler(ValidationError, _validation_error)  # type: ignore[arg-type]
api.add_exception_handler(HttpError, _http_error)  # type: ignore[arg-type]

from django.core.exceptions import RequestDataTooBig  # noqa: E402

api.add_exception_handler(RequestDataTooBig, _too_big)

from api.admin import routes_licenses, routes_projects, routes_webhooks  # noqa: E402

api.add_router("", routes_licenses.router)
api.add_router("", routes_projects.router)
api.add_router("", routes_webhooks.router)
