"""Origins and domains for per_domain items (SPEC sections 2 and 4).

- An origin is normalized to ``scheme://host[:port]``: lower case, the default port (80 for http,
  443 for https) dropped, a trailing dot removed, an IDN host in punycode (UTS 46, as browsers do).
- The per_domain unit of a host is its registrable domain by the Public Suffix List, private
  section included (``a.company.com`` and ``b.company.com`` are one unit; ``x.github.io`` and
  ``y.github.io`` are two), one label deeper under a multi-tenant platform of
  ``licenses.models.MultiTenantDomain`` (``dynamsoft.force.com``).
- IP addresses and ``localhost`` have no unit: they match only an item whose domain is exactly
  that host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*$")
# After IDNA: letters, digits, hyphens (and underscores, which browsers accept in hosts).
_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_FORBIDDEN_IN_AUTHORITY = set(" \t\r\n\\/?#@%<>^|{}\"'`")


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # The bundled list, with the private section (github.io, herokuapp.com, ...).
    return PublicSuffixList(only_icann=False)


def _to_ascii(host: str) -> str:
    if host.isascii():
        return host.lower()
    try:
        import idna

        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except ImportError:  # pragma: no cover - idna comes with httpx
        pass
    except Exception:
        # Some hosts browsers accept (symbols, e.g. a snowman) fail IDNA 2008; IDNA 2003 takes them.
        pass
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{host!r} is not a valid internationalized host name") from None


def normalize_host(host: str) -> str:
    """A host name or IP address in comparable form: lower case, punycode, no trailing dot, IPv6
    compressed without brackets. Raises ValueError(reason)."""
    if not isinstance(host, str):
        raise ValueError("host must be a string")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        return _ipv6(host[1:-1])
    if ":" in host:
        return _ipv6(host)
    if not host:
        raise ValueError("host is empty")
    if any(c in _FORBIDDEN_IN_AUTHORITY for c in host):
        raise ValueError(f"host {host!r} contains a forbidden character")
    host = _to_ascii(host)
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > 253:
        raise ValueError("host must be 1 to 253 characters")
    labels = host.split(".")
    if any(not _LABEL_RE.match(label) for label in labels):
        raise ValueError(f"host {host!r} is not a valid host name")
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        # A numeric last label makes it an IPv4 address (or garbage): never a domain.
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv4 address") from None
    return host


def _ipv6(text: str) -> str:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid IPv6 address") from None
    if address.scope_id:
        raise ValueError("an IPv6 zone is not allowed in an origin")
    return str(address)


def _split_origin(origin: str) -> tuple[str, str, int | None]:
    if not isinstance(origin, str):
        raise ValueError("origin must be a string")
    origin = origin.strip()
    if not origin:
        raise ValueError("origin is empty")
    if len(origin) > 300:
        raise ValueError("origin is longer than 300 characters")
    if "://" not in origin:
        raise ValueError("origin must look like scheme://host[:port]")
    scheme, rest = origin.split("://", 1)
    scheme = scheme.lower()
    if not _SCHEME_RE.match(scheme):
        raise ValueError(f"invalid scheme {scheme!r}")
    if rest.endswith("/"):  # "https://x.com/" as pasted from an address bar
        rest = rest[:-1]
    if "@" in rest:
        raise ValueError("origin must not contain credentials")
    if any(c in rest for c in "/?#"):
        raise ValueError("origin must not contain a path, query or fragment")
    if not rest:
        raise ValueError("origin has no host")
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError("unterminated IPv6 address")
        host, after = rest[: end + 1], rest[end + 1 :]
        if after and not after.startswith(":"):
            raise ValueError("garbage after the IPv6 address")
        port_text = after[1:] if after else None
    elif rest.count(":") > 1:
        raise ValueError("an IPv6 address must be in brackets")
    elif ":" in rest:
        host, port_text = rest.split(":", 1)
    else:
        host, port_text = rest, None
    port = None
    if port_text:  # "https://x.com:" has an empty port: the default one, as browsers read it
        if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
            raise ValueError(f"invalid port {port_text!r}")
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
    return scheme, host, port


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default port dropped, trailing dot removed, IDN host
    in punycode. Raises ValueError(reason) on paths, credentials, bad ports or garbage."""
    scheme, host, port = _split_origin(origin)
    host = normalize_host(host)
    if ":" in host:
        host = f"[{host}]"
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def origin_host(origin: str) -> str:
    """The normalized host of an origin (an IPv6 address without brackets)."""
    return normalize_host(_split_origin(origin)[1])


def is_address_or_localhost(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def multi_tenant_domains() -> list[str]:
    from licenses.models import MultiTenantDomain

    return list(MultiTenantDomain.objects.values_list("domain", flat=True))


def domain_unit(host: str, *, multi_tenant: Iterable[str] | None = None) -> str:
    """The per_domain unit of a host: its registrable domain by the Public Suffix List (private
    section included), one label deeper under a multi-tenant platform. A host that is itself a
    public suffix, an IP address or localhost is its own unit."""
    host = normalize_host(host)
    if is_address_or_localhost(host):
        return host
    unit = _psl().privatesuffix(host) or host
    tenants = multi_tenant_domains() if multi_tenant is None else multi_tenant
    for platform in tenants:
        platform = platform.strip().strip(".").lower()
        if not platform or not host.endswith("." + platform):
            continue
        tenant = host[: -len(platform) - 1].rsplit(".", 1)[-1] + "." + platform
        if len(tenant) > len(unit):
            unit = tenant
    return unit


def normalize_item_domain(item_domain: str) -> str:
    """An item's domain as written (``*.x.com`` or ``x.com``) in comparable form (no ``*.``)."""
    if not isinstance(item_domain, str):
        raise ValueError("domain must be a string")
    domain = item_domain.strip()
    if domain.startswith("*."):
        domain = domain[2:]
    if "*" in domain:
        raise ValueError("a wildcard is only allowed as a leading '*.'")
    return normalize_host(domain)


def _without_port(host: str) -> str:
    """ "example.com:8443" -> "example.com", "[::1]:80" -> "[::1]"; a bare IPv6 address is kept."""
    host = host.strip()
    if host.startswith("[") and "]:" in host:
        return host[: host.index("]:") + 1]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def domain_matches(item_domain: str, host: str, *, multi_tenant: Iterable[str] | None = None) -> bool:
    """Whether ``host`` (from an origin) belongs to an item's licensed domain (SPEC section 4).

    Case, port, a trailing dot and IDN spelling do not matter; IP addresses and localhost match
    only an item whose domain is exactly that host. Unparseable input never matches."""
    try:
        domain = normalize_item_domain(item_domain)
        host = origin_host(host) if "://" in host else normalize_host(_without_port(host))
    except ValueError:
        return False
    if is_address_or_localhost(host) or is_address_or_localhost(domain):
        return host == domain
    tenants = multi_tenant_domains() if multi_tenant is None else list(multi_tenant)
    return domain_unit(domain, multi_tenant=tenants) == domain_unit(host, multi_tenant=tenants)


def item_domain_error(item_domain: str) -> str | None:
    """Why an item's domain (as written) cannot be licensed, or None (SPEC section 4).

    The one check of an item's domain: the model's validation calls it, so the admin, the license
    file import and the admin API refuse the same domains with the same words."""
    try:
        host = normalize_item_domain(item_domain)
    except ValueError as e:
        return f"must be a host name like example.com or *.example.com ({e})"
    if not is_address_or_localhost(host) and _psl().is_public(host):
        # A public suffix (com, co.uk, github.io) is no one's domain: it would match nothing.
        return f"{host} is a public suffix, not a registrable domain"
    return None
