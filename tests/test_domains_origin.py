"""normalize_origin / origin_host: the one form in which web origins are stored and compared."""

from __future__ import annotations

import pytest

from licenses.domains import normalize_host, normalize_origin, origin_host


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("http://app.example.com:443", "http://app.example.com:443"),
        ("https://app.example.com:80", "https://app.example.com:80"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("https://app.example.com.", "https://app.example.com"),
        ("https://app.example.com.:8443", "https://app.example.com:8443"),
        ("https://app.example.com/", "https://app.example.com"),
        ("https://app.example.com:", "https://app.example.com"),
        ("http://[::1]:", "http://[::1]"),
        ("  https://app.example.com  ", "https://app.example.com"),
        ("https://bücher.de", "https://xn--bcher-kva.de"),
        ("https://BÜCHER.de", "https://xn--bcher-kva.de"),
        ("https://xn--bcher-kva.de", "https://xn--bcher-kva.de"),
        ("https://пример.рф:8080", "https://xn--e1afmkfd.xn--p1ai:8080"),
        ("https://faß.de", "https://xn--fa-hia.de"),  # UTS 46 non-transitional, as browsers
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
        ("https://[2001:DB8::1]:443", "https://[2001:db8::1]"),
        ("capacitor://localhost", "capacitor://localhost"),
    ],
)
def test_it_normalizes_origins(raw, expected):
    assert normalize_origin(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "example.com",
        "https://",
        "https://example.com/path",
        "https://example.com/app/",
        "https://example.com?x=1",
        "https://example.com#top",
        "https://user:pass@example.com",
        "https://user@example.com",
        "https://example.com:0",
        "https://example.com:65536",
        "https://example.com:http",
        "https://example.com:-1",
        "https://exa mple.com",
        "https://exa\\mple.com",
        "https://example..com",
        "https://-example.com",
        "https://example-.com",
        "https://" + "a" * 64 + ".com",
        "https://::1",
        "https://[::1",
        "https://[::1]x",
        "https://[fe80::1%25eth0]",
        "https://1.2.3.999",
        "https://1.2.3",
        "1https://example.com",
        "https://" + "a." * 150 + "com",
        "javascript://%0aalert(1)",
        None,
        42,
    ],
)
def test_it_refuses_what_is_not_an_origin(raw):
    with pytest.raises(ValueError):
        normalize_origin(raw)


def test_it_gives_the_reason():
    with pytest.raises(ValueError, match="path"):
        normalize_origin("https://example.com/app")
    with pytest.raises(ValueError, match="credentials"):
        normalize_origin("https://me@example.com")


@pytest.mark.parametrize(
    "origin, host",
    [
        ("https://App.Example.com:8443", "app.example.com"),
        ("https://bücher.de.", "xn--bcher-kva.de"),
        ("http://[::1]:8000", "::1"),
        ("http://127.0.0.1", "127.0.0.1"),
    ],
)
def test_it_extracts_the_host(origin, host):
    assert origin_host(origin) == host


def test_it_normalizes_bare_hosts():
    assert normalize_host("EXAMPLE.com.") == "example.com"
    assert normalize_host("[::1]") == "::1"
    assert normalize_host("ＥＸＡＭＰＬＥ.com") == "example.com"  # full-width letters map to ASCII
