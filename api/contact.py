"""Middleware: the device API's requests record their client address and User-Agent
(``devices.context``)."""

from __future__ import annotations

from devices.context import contact_from


class ClientAddressMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/v1/"):
            return self.get_response(request)
        with contact_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_USER_AGENT")):
            return self.get_response(request)
