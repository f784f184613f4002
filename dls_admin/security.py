"""Security middleware: the content security policy header and the client address behind
trusted proxies.

Django 5.2 has no built-in CSP. Every page of this app loads only same-origin static files (the
portal, the admin, the API docs, whose Swagger UI is served from the ``ninja`` app's static files),
has no inline script or style, and draws charts as inline SVG, so the default policy is strict:
``'self'`` only, plus ``data:`` images (Swagger UI's CSS icons)."""

from __future__ import annotations

from django.conf import settings

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` (or ``-Report-Only`` with ``CSP_REPORT_ONLY``) to every
    response that does not set its own. ``CONTENT_SECURITY_POLICY`` empty turns it off."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_CSP)
        report_only = getattr(settings, "CSP_REPORT_ONLY", False)
        self.header = "Content-Security-Policy-Report-Only" if report_only else "Content-Security-Policy"

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response and self.header not in response:
            response[self.header] = self.policy
        return response


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
