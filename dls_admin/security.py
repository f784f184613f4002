"""Security helpers: the content security policy's configuration and the client address behind
trusted proxies.

The policy header itself is django-csp's ``CSPMiddleware``. Every page of this app loads only
same-origin static files (the portal, the admin, the API docs, whose Swagger UI is served from the
``ninja`` app's static files), has no inline script or style, and draws charts as inline SVG, so
the default policy is strict: ``'self'`` only, plus ``data:`` images (Swagger UI's CSS icons)."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def parse_csp(text: str) -> dict[str, list[str] | bool]:
    """``"default-src 'self'; img-src 'self' data:"`` -> django-csp's ``DIRECTIVES``
    (``{"default-src": ["'self'"], "img-src": ["'self'", "data:"]}``); empty text, no directive.
    A directive without sources (``upgrade-insecure-requests``) becomes ``True``."""
    directives: dict[str, list[str] | bool] = {}
    for part in text.split(";"):
        if part.strip():
            name, *sources = part.split()
            directives[name.lower()] = sources or True
    return directives


def forwarded_client_address(remote_addr: str, forwarded_for: str, trusted_proxies: int) -> str:
    """The client address when ``trusted_proxies`` proxies we run append to ``X-Forwarded-For``.

    Each proxy appends the address it received the request from, so the client is the entry
    ``trusted_proxies`` from the right; entries left of it were written by the client and can be
    forged. Fewer entries than proxies means the header did not come through them: keep
    REMOTE_ADDR."""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if len(hops) < trusted_proxies:
        return remote_addr
    return hops[-trusted_proxies]


class TrustedProxyMiddleware:
    """With ``TRUSTED_PROXY_COUNT`` > 0 (the web processes sit behind that many proxies, e.g. 1
    for one load balancer), sets ``REMOTE_ADDR`` to the client's address, so the device API's
    per-address rate limit, the login throttle and the logs see clients, not the proxy."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)

    def __call__(self, request):
        if self.trusted:
            meta = request.META
            meta["REMOTE_ADDR"] = forwarded_client_address(
                meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""), self.trusted
            )
        return self.get_response(request)


def client_address(request) -> str | None:
    """The client's IP address as the login throttle and the rate limits count it: REMOTE_ADDR
    (set from X-Forwarded-For by ``TrustedProxyMiddleware`` behind trusted proxies); None when it
    is not an IP address."""
    address = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
