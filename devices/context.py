"""The client address and User-Agent of the device request being served, for the records it
writes (``Decision.client_address``, ``UsageReport.client_address``, ``Device.user_agent``;
docs/insight.md, key sharing and seat burn).

Services take typed inputs and no request; the API's middleware (``api.contact``) sets the
address for the duration of one request, as ``api.ratelimit`` reads it (``REMOTE_ADDR`` after
``dls_admin.security.TrustedProxyMiddleware``). Outside a device request it is None."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_address: ContextVar[str | None] = ContextVar("client_address", default=None)
_user_agent: ContextVar[str | None] = ContextVar("user_agent", default=None)
USER_AGENT_LENGTH = 255  # Device.user_agent: longer headers are cut, not refused


def client_address() -> str | None:
    return _address.get()


def user_agent() -> str | None:
    """The request's User-Agent header, cut to ``USER_AGENT_LENGTH``; None outside a device
    request or when the request sent none."""
    return _user_agent.get()


@contextmanager
def contact_from(address: str | None, agent: str | None = None) -> Iterator[None]:
    """Requests served inside come from ``address`` (kept only if it is an IP address) with the
    User-Agent ``agent``."""
    try:
        value = str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        value = None
    token = _address.set(value)
    agent = "".join(c for c in agent if c.isprintable()).strip()[:USER_AGENT_LENGTH] if agent else ""
    agent_token = _user_agent.set(agent or None)
    try:
        yield
    finally:
        _user_agent.reset(agent_token)
        _address.reset(token)
