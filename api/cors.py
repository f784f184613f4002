"""The device API in browsers, and JSON answers for everything under /api/ (SPEC section 6,
"Browsers").

- A CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) to authorize, usage or
  release answers 204 with the headers the SPEC lists; every answer under /api/v1/ (refusals
  included) carries ``Access-Control-Allow-Origin`` (the request's ``Origin``, or ``*`` without
  one: no credentials are ever allowed) and ``Vary: Origin``, and exposes ``Retry-After`` to the
  page's script (a 429 says when to retry).
- No cookies are read or set under /api/v1/: the ``Cookie`` header is dropped before the session,
  CSRF and auth middleware see it, and any ``Set-Cookie`` is removed from the answer.
- A body sent with ``Transfer-Encoding: chunked`` (no ``Content-Length``) is read up to the body
  limit (413 past it); gunicorn, which serves production, de-chunks it for us.
- Unknown paths and methods under /api/ answer the SPEC error body (404 code 7, 405 code 1)
  instead of Django's HTML pages.

Installed first in ``MIDDLEWARE`` (after the request id) so that it wraps every other layer."""

from __future__ import annotations

import io

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

DEVICE_API = "/api/v1/"
DEVICE_ENDPOINTS = frozenset({"/api/v1/authorize", "/api/v1/usage", "/api/v1/release"})
PREFLIGHT_MAX_AGE = "86400"
# The endpoints' answers are never documents: a fixed policy (OWASP's for REST answers) instead
# of the pages' one, whose middleware they skip (dls_admin/pages_only.py).
DEVICE_API_CSP = "default-src 'none'; frame-ancestors 'none'"


def error_response(code: int, name: str, message: str, status: int, fields: dict | None = None) -> JsonResponse:
    error: dict = {"code": code, "name": name, "message": message}
    if fields:
        error["fields"] = fields
    return JsonResponse({"error": error}, status=status)


def too_big() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    message = f"the body is larger than {limit} bytes"
    return error_response(1, "INVALID_REQUEST", message, 413, {"body": f"at most {limit} bytes"})


def _is_chunked(request: HttpRequest) -> bool:
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return "chunked" in encoding and not request.META.get("CONTENT_LENGTH")


def _read_chunked(request: HttpRequest) -> HttpResponse | None:
    """Read a de-chunked body (the server ends ``wsgi.input`` at the body's end) into the request;
    a 413 answer past the limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    stream = request.META.get("wsgi.input")
    if stream is None or not request.META.get("wsgi.input_terminated"):
        return None  # a server that cannot tell where the body ends: Django reads none of it
    parts, size = [], 0
    while size <= limit:
        part = stream.read(min(65536, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        return too_big()
    body = b"".join(parts)
    request._body = body  # what request.body returns; the stream is consumed
    request._stream = io.BytesIO(body)
    request.META["CONTENT_LENGTH"] = str(len(body))
    return None


def skip_health_check() -> None:
    """No ``CONN_HEALTH_CHECKS`` round trip for a device request (docs/benchmarks.md, "Hot
    path"): it cost every request a ``SELECT 1`` (about 30 us of CPU here and as much in
    PostgreSQL, 0.15-0.3 ms of latency). A connection that broke since its last request fails
    this one (a 5xx the SDK retries, with the same report_id), and Django closes a connection
    that raised at the end of the request, so the next one connects afresh."""
    for conn in connections.all(initialized_only=True):
        conn.health_check_done = True  # type: ignore[attr-defined]  # set by BaseDatabaseWrapper.__init__


def _json_error_page(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if response.status_code not in (404, 405) or response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code == 404:
        return error_response(7, "NOT_FOUND", f"no such endpoint: {request.path_info}", 404)
    answer = error_response(1, "INVALID_REQUEST", f"method {request.method} is not allowed here", 405)
    if response.has_header("Allow"):
        answer["Allow"] = response["Allow"]
    return answer


class DeviceApiMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not path.startswith("/api/"):
            return self.get_response(request)
        device_api = path.startswith(DEVICE_API)
        if device_api:
            request.META.pop("HTTP_COOKIE", None)
            request.COOKIES = {}
        endpoint = device_api and path in DEVICE_ENDPOINTS
        if endpoint:
            skip_health_check()
        if endpoint and request.method == "OPTIONS":
            response = self._preflight(request)
        else:
            early = _read_chunked(request) if _is_chunked(request) else None
            response = early if early is not None else self.get_response(request)
            response = _json_error_page(request, response)
        if device_api:
            response["Access-Control-Allow-Origin"] = request.META.get("HTTP_ORIGIN") or "*"
            response["Access-Control-Expose-Headers"] = "Retry-After"  # a page's SDK must read it on 429
            patch_vary_headers(response, ["Origin"])
            response.cookies.clear()
        if endpoint:
            response.setdefault("Content-Security-Policy", DEVICE_API_CSP)
        return response

    @staticmethod
    def _preflight(request: HttpRequest) -> HttpResponse:
        if "HTTP_ACCESS_CONTROL_REQUEST_METHOD" not in request.META:
            answer = error_response(1, "INVALID_REQUEST", "method OPTIONS is not allowed here", 405)
            answer["Allow"] = "POST, OPTIONS"
            return answer
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response
