"""The client address of the device request being served, for the records it writes
(``Decision.client_address``, ``UsageReport.client_address``; docs/insight.md, key sharing).

Services take typed inputs and no request; the API's middleware (``api.contact``) sets the
address for the duration of one request, as ``api.ratelimit`` reads it (``REMOTE_ADDR`` after
``dls_admin.security.TrustedProxyMiddleware``). Outside a device request it is None."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def client_address() -> str | None:
    return _address.get()


@contextmanager
def contact_from(address: str | None) -> Iterator[None]:
    """Requests served inside come from ``address`` (kept only if it is an IP address)."""
    try:
        value = str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        value = None
    token = _address.set(value)
    try:
        yield
    finally:
        _address.reset(token)
