"""Security helpers: the content security policy's configuration and the client address behind
trusted proxies.

The policy header itself is django-csp's ``CSPMiddleware``. Every page of this app loads only
same-origin static files (the portal, the admin, the API docs, whose Swagger UI is served from the
``ninja`` app's static files), has no inline script or style, and draws charts as inline SVG, so
the default policy is strict: ``'self'`` only, plus ``data:`` images (Swagger UI's CSS icons)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: list[str], *, setting: str = "TRUSTED_PROXIES") -> tuple[Network, ...]:
    """``["10.0.0.0/8", "192.0.2.7", "::1"]`` -> networks (a bare address is a /32 or /128)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{setting}: {entry!r} is not an IP address or a CIDR network") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address


def forwarded_client_address(remote_addr: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The client's address: ``remote_addr`` (the peer of this connection) unless that peer is
    one of our ``trusted`` proxies; then ``X-Forwarded-For`` is read from the right, each hop a
    trusted proxy appended, and the first hop that is not a trusted proxy is the client. Entries
    left of it were written by the client (or a proxy we do not run) and are never believed."""
    client = _ip(remote_addr)
    if client is None or not any(client in net for net in trusted):
        return remote_addr
    for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
        address = _ip(hop)
        if address is None:  # garbage where an address should be: stop at the last proxy
            break
        client = address
        if not any(address in net for net in trusted):
            break
    return str(client)


class TrustedProxyMiddleware:
    """With ``TRUSTED_PROXIES`` (the proxies' addresses or networks), sets ``REMOTE_ADDR`` to the
    client's address for requests that came through them, so the device API's rate limits, the
    login throttle and the logs count clients, not the proxy; a client that connects directly and
    sends ``X-Forwarded-For`` is counted under its own address. The peer's own address stays in
    ``request.META["DLS_PEER_ADDR"]``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        trusted = getattr(settings, "TRUSTED_PROXIES", ())
        meta = request.META
        meta["DLS_PEER_ADDR"] = meta.get("REMOTE_ADDR", "")
        if trusted:
            trusted = parse_networks([str(network) for network in trusted])
            meta["REMOTE_ADDR"] = forwarded_client_address(
                meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""), trusted
            )
        return self.get_response(request)


def client_address(request) -> str | None:
    """The client's IP address as the login throttle counts it (axes' ``AXES_CLIENT_IP_CALLABLE``):
    REMOTE_ADDR, which ``TrustedProxyMiddleware`` set from X-Forwarded-For for requests through
    trusted proxies; None when it is not an IP address."""
    address = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
