"""Middleware that the device API's three endpoints do without (docs/benchmarks.md, "Hot path").

``POST /api/v1/authorize``, ``/usage`` and ``/release`` read and set no cookie (``api/cors.py``
drops them), have no session, user or messages, and answer JSON, not a document: the session,
authentication, messages and CSP middleware did nothing for them but cost CPU on every request
(the CSP header alone was built anew for each answer). CSRF's stays as it is (the views are
exempt, and ``check --deploy`` looks for it by name). ``pages_only(path)`` is the middleware
at ``path`` for every other request (pages, the admin, the admin API, ``/api/v1/docs``),
exactly as before, its hooks included; the device endpoints skip it. Their answers carry a
fixed policy instead (``api.cors.DEVICE_API_CSP``), so they are not left without one.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from api.cors import DEVICE_ENDPOINTS


def is_device_request(request: HttpRequest) -> bool:
    return request.path_info in DEVICE_ENDPOINTS


def pages_only(path: str):
    """A subclass of the middleware class at ``path`` (so Django's and the admin's checks still
    find it) that the device endpoints skip, hooks included."""
    base = import_string(path)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_device_request(request):
            return self.get_response(request)
        return base.__call__(self, request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_device_request(request):
            return None
        return base.process_view(self, request, view_func, view_args, view_kwargs)

    def process_exception(self, request, exception):
        if is_device_request(request):
            return None
        return base.process_exception(self, request, exception)

    def process_template_response(self, request, response):
        if is_device_request(request):
            return response
        return base.process_template_response(self, request, response)

    namespace = {"__call__": __call__, "__module__": __name__, "__doc__": f"{path}, except for the device endpoints."}
    for hook in (process_view, process_exception, process_template_response):
        if hasattr(base, hook.__name__):  # Django registers a hook only where the class has one
            namespace[hook.__name__] = hook
    return type(base.__name__, (base,), namespace)


SessionMiddleware = pages_only("django.contrib.sessions.middleware.SessionMiddleware")
AuthenticationMiddleware = pages_only("django.contrib.auth.middleware.AuthenticationMiddleware")
MessageMiddleware = pages_only("django.contrib.messages.middleware.MessageMiddleware")
CSPMiddleware = pages_only("csp.middleware.CSPMiddleware")
