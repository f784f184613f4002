"""The product's own 403, 404 and 500 pages, with the way back (SPEC section 10).

``handler403/404/500`` in dls_admin/urls.py point here for production. ``ErrorPagesMiddleware``
turns a view's Http404 or PermissionDenied into the same pages before Django's handler sees the
exception, so the demo (DEBUG) shows them too instead of the debug pages, and a 403 is logged as
one line ("Forbidden: /path") rather than with a traceback. The JSON APIs keep their own errors."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template import loader
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

API_PREFIXES = ("/api/", "/.well-known/", "/healthz")


def way_back(request: HttpRequest) -> str:
    """Where "Go back" leads: the page the user came from on this site, or the portal's home."""
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        if referer.split("?")[0].rstrip("/") != request.build_absolute_uri(request.path).rstrip("/"):
            return referer
    return reverse("portal:home")


class ProductPage(HttpResponse):
    """One of these pages: ``ErrorPagesMiddleware`` passes it on as it is."""


def _page(request: HttpRequest, status: int, template: str, reason: str = "") -> HttpResponse:
    context = {"back": way_back(request), "reason": reason, "request_path": request.path}
    return ProductPage(loader.render_to_string(template, context, request), status=status)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return _page(request, 404, "404.html")


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else ""
    return _page(request, 403, "403.html", reason)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: a template error here must not raise again (base.html copes).
    return HttpResponse(loader.render_to_string("500.html", {"back": reverse("portal:home")}), status=500)


class ErrorPagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and not isinstance(response, ProductPage)
            and "text/html" in response.get("Content-Type", "")
            and not request.path.startswith(API_PREFIXES)
        ):
            return page_not_found(request)  # a URL no route matches, in the demo
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith(API_PREFIXES):
            return None
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        return None
