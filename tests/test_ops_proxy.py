"""The client address behind trusted proxies (TRUSTED_PROXY_COUNT): the entry that many from the
right of X-Forwarded-For; entries the client wrote itself are never believed."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from dls_admin.security import TrustedProxyMiddleware, forwarded_client_address


@pytest.mark.parametrize(
    "remote, forwarded, proxies, expected",
    [
        ("10.0.0.2", "", 1, "10.0.0.2"),
        ("10.0.0.2", "203.0.113.7", 1, "203.0.113.7"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # 6.6.6.6 was forged by the client
        ("10.0.0.2", "6.6.6.6, 203.0.113.7, 10.0.0.9", 2, "203.0.113.7"),
        ("10.0.0.2", "203.0.113.7", 2, "10.0.0.2"),  # fewer hops than proxies: not through them
        ("10.0.0.2", "203.0.113.7", 0, "10.0.0.2"),  # no trusted proxy: the header is ignored
    ],
)
def test_it_picks_the_client_address(remote, forwarded, proxies, expected):
    assert forwarded_client_address(remote, forwarded, proxies) == expected


def test_it_rewrites_remote_addr_only_when_configured(settings):
    seen = []
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4")
    settings.TRUSTED_PROXY_COUNT = 0
    TrustedProxyMiddleware(lambda r: seen.append(r.META["REMOTE_ADDR"]) or HttpResponse())(request)
    settings.TRUSTED_PROXY_COUNT = 1
    TrustedProxyMiddleware(lambda r: seen.append(r.META["REMOTE_ADDR"]) or HttpResponse())(request)
    assert seen == ["10.0.0.2", "198.51.100.4"]
