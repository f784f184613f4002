"""The SSRF guard of webhook delivery (SPEC section 14): no loopback, private or link-local
targets unless ``WEBHOOK_ALLOW_PRIVATE_HOSTS=1``; ``https`` only in production settings.

A host name is resolved once per attempt (``resolve_target``), every address it resolves to is
checked, and the request connects to those checked addresses only (``post``: an httpcore
network backend that opens the socket to the address itself, while the URL, the Host header,
TLS SNI and the certificate check keep the name). A name whose DNS answer changes between the
check and the connection (DNS rebinding) therefore cannot send a delivery to a private address.
Redirects are never followed."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from django.conf import settings
from httpcore._backends.sync import SyncStream

TIMEOUT_S = 10.0  # a 2xx within 10 s succeeds


def allow_private_hosts() -> bool:
    value = getattr(settings, "WEBHOOK_ALLOW_PRIVATE_HOSTS", None)
    if value is None:
        value = os.environ.get("WEBHOOK_ALLOW_PRIVATE_HOSTS", "0")
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def blocked(address: str) -> bool:
    """Whether a delivery may not connect to ``address`` (anything not globally routable)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


@dataclass(frozen=True)
class Target:
    """A checked URL: ``host`` and ``port`` as the HTTP client connects to them, and the
    addresses (family, IP) that passed the check. No addresses: not pinned (private hosts are
    allowed, nothing was checked, the client resolves as usual)."""

    url: str
    host: str
    port: int
    addresses: tuple[tuple[int, str], ...] = ()


def resolve_target(url: str) -> Target | str:
    """The target to deliver ``url`` to, or why it may not be an endpoint: ``https`` in
    production (``http`` also elsewhere), no user name or password, and a host that resolves
    only to public addresses unless ``WEBHOOK_ALLOW_PRIVATE_HOSTS=1``. Resolved once: the
    returned addresses are the ones to connect to."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "is not a URL"
    allowed = ("https",) if getattr(settings, "PRODUCTION", False) else ("https", "http")
    if parsed.scheme not in allowed:
        return "must be an https URL" if allowed == ("https",) else "must be an http or https URL"
    if not parsed.host:
        return "has no host"
    if parsed.userinfo:
        return "may not carry a user name or password"
    # The host as the HTTP client connects to it (IDNA-encoded, IPv6 without brackets).
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if allow_private_hosts():
        return Target(url, host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return f"host {parsed.host} does not resolve"
    addresses: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        address = str(sockaddr[0])
        if blocked(address):
            return f"host {parsed.host} resolves to a loopback, private or link-local address"
        if (family, address) not in addresses:
            addresses.append((family, address))
    if not addresses:
        return f"host {parsed.host} does not resolve"
    return Target(url, host, port, tuple(addresses))


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be an endpoint, or None (``resolve_target``). Checked when an
    endpoint is saved and again before each attempt (a name may resolve elsewhere later)."""
    target = resolve_target(url)
    return target if isinstance(target, str) else None


class PinnedBackend(httpcore.SyncBackend):
    """Connects to the checked addresses of one target, in order, and nowhere else; never
    resolves a name (the socket is given an address)."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if host != self.target.host or port != self.target.port:
            raise httpcore.ConnectError(f"{host}:{port} is not the checked target")
        problem: OSError | None = None
        for family, address in self.target.addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                if local_address is not None:
                    sock.bind((local_address, 0))
                sock.connect((address, port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for option in socket_options or ():
                    sock.setsockopt(*option)
            except OSError as e:
                sock.close()
                problem = e
                continue
            return SyncStream(sock)
        if isinstance(problem, TimeoutError):
            raise httpcore.ConnectTimeout(str(problem))
        raise httpcore.ConnectError(f"{self.target.host}: {problem}")


class PinnedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose network backend is ``PinnedBackend``.
    httpx's constructor offers no choice of backend; its request handling only uses ``_pool``,
    which is built here instead (``tests/test_webhooks_ssrf.py`` pins the behavior)."""

    def __init__(self, target: Target, *, verify: Any = True) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=1,
            network_backend=PinnedBackend(target),
        )


def post(target: Target, body: str, headers: dict[str, str], *, verify: Any = True) -> httpx.Response:
    """POST ``body`` to a checked target, connecting to its checked addresses only."""
    transport = PinnedTransport(target, verify=verify) if target.addresses else None
    with httpx.Client(transport=transport, timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        return client.post(target.url, content=body.encode("utf-8"), headers=headers)
