"""The client address behind trusted proxies (TRUSTED_PROXIES): X-Forwarded-For is believed only
on a connection from a configured proxy address or network, read from the right past our own
proxies; a client that connects directly and sends the header is counted under its own address,
by the device API's rate limits and the login throttle alike."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory

from dls_admin.security import TrustedProxyMiddleware, forwarded_client_address, parse_networks
from tests import factories
from tests.test_ops_deploy_check import manage, production_env

PROXIES = parse_networks(["10.0.0.0/24", "192.0.2.7", "::1"])


@pytest.mark.parametrize(
    "peer, forwarded, expected",
    [
        ("10.0.0.2", "", "10.0.0.2"),  # through the proxy, no header: the proxy itself
        ("10.0.0.2", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # 6.6.6.6 was forged by the client
        ("10.0.0.2", "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"),  # two of our proxies
        ("192.0.2.7", "198.51.100.4", "198.51.100.4"),  # a single trusted address
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.2", "203.0.113.7", "203.0.113.7"),  # IPv4-mapped peer
        ("10.0.0.2", "garbage, 203.0.113.7", "203.0.113.7"),
        ("10.0.0.2", "203.0.113.7, garbage", "10.0.0.2"),  # not an address: stop at our proxy
        ("203.0.113.50", "198.51.100.4", "203.0.113.50"),  # spoofed from a non-proxy peer: ignored
        ("10.0.1.2", "198.51.100.4", "10.0.1.2"),  # just outside the network
    ],
)
def test_it_picks_the_client_address(peer, forwarded, expected):
    assert forwarded_client_address(peer, forwarded, PROXIES) == expected


def test_it_ignores_the_header_without_trusted_proxies():
    assert forwarded_client_address("10.0.0.2", "198.51.100.4", ()) == "10.0.0.2"


def test_it_rewrites_remote_addr_only_for_trusted_peers(settings):
    seen = []

    def view(request):
        seen.append((request.META["REMOTE_ADDR"], request.META["DLS_PEER_ADDR"]))
        return HttpResponse()

    factory = RequestFactory()
    settings.TRUSTED_PROXIES = ()
    TrustedProxyMiddleware(view)(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4"))
    settings.TRUSTED_PROXIES = PROXIES
    TrustedProxyMiddleware(view)(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4"))
    TrustedProxyMiddleware(view)(factory.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.4"))
    assert seen == [
        ("10.0.0.2", "10.0.0.2"),
        ("198.51.100.4", "10.0.0.2"),
        ("203.0.113.9", "203.0.113.9"),
    ]


@pytest.mark.django_db
def test_a_spoofing_client_straight_to_the_server_stays_under_its_own_address_limit(client, settings):
    """The fault this closes: with the header trusted from any peer, 300 of 300 requests passed a
    per-address limit by forging X-Forwarded-For. Now the forged header is ignored."""
    settings.TRUSTED_PROXIES = ("127.0.0.1",)
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "5/m"
    item = factories.LicenseItemFactory()
    statuses = []
    for i in range(8):
        body = factories.auth_body(item.project, f"spoof-{i}")
        response = client.post(
            "/api/v1/authorize",
            body,
            content_type="application/json",
            REMOTE_ADDR="203.0.113.50",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        )
        statuses.append(response.status_code)
    assert 429 not in statuses[:5] and statuses[5:] == [429, 429, 429], statuses
    # Through the trusted proxy, the forwarded address is the one counted: another client passes.
    body = factories.auth_body(item.project, "through-proxy")
    response = client.post(
        "/api/v1/authorize", body, content_type="application/json", REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )  # fmt: skip
    assert response.status_code != 429


@pytest.mark.django_db
def test_a_spoofing_client_cannot_lock_out_another_address_at_login(client, settings):
    settings.TRUSTED_PROXIES = ("127.0.0.1",)
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_ADDRESS = 10
    user = factories.UserFactory()
    for _ in range(5):  # claims to be 198.51.100.1 without coming through the proxy
        client.post(
            "/accounts/login/", {"username": user.username, "password": "wrong"}, REMOTE_ADDR="203.0.113.50",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
        )  # fmt: skip
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": factories.PASSWORD}, REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )  # fmt: skip
    assert response.status_code == 302  # the real 198.51.100.1, through the proxy, logs in


def test_it_reads_trusted_proxies_from_the_environment_and_refuses_the_old_count():
    code = "from django.conf import settings as s; print([str(n) for n in s.TRUSTED_PROXIES])"
    result = manage("shell", "--no-imports", "-c", code, env=production_env(TRUSTED_PROXIES="127.0.0.1,10.0.0.0/24"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "['127.0.0.1/32', '10.0.0.0/24']"
    result = manage("check", env=production_env(TRUSTED_PROXIES="10.0.0.0/33"))
    assert result.returncode != 0 and "TRUSTED_PROXIES: '10.0.0.0/33' is not an IP address" in result.stderr
    result = manage("check", env=production_env(TRUSTED_PROXY_COUNT="1"))
    assert result.returncode != 0 and "set TRUSTED_PROXIES" in result.stderr


def test_parse_networks_names_the_bad_entry():
    with pytest.raises(ImproperlyConfigured, match="'nope'"):
        parse_networks(["10.0.0.1", "nope"])
