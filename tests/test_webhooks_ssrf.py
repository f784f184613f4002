"""The SSRF guard pins what it checked (SPEC section 14): a host name is resolved once per
attempt, every address is checked, and the request connects to the checked address with the
name kept for the Host header, TLS SNI and the certificate check. A name that answers a public
address for the check and loopback afterwards (DNS rebinding) never reaches loopback."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from licenses.events import emit
from tests.test_webhooks_delivery import Receiver
from usage.webhooks import guard
from usage.webhooks.dispatch import run_webhooks
from usage.webhooks.endpoints import create_endpoint
from usage.webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"
real_getaddrinfo = socket.getaddrinfo
real_connect = socket.socket.connect


def answer(address: str, port):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


@pytest.fixture
def receiver():
    rx = Receiver()
    yield rx
    rx.close()


@pytest.fixture
def connects(monkeypatch):
    """Every address a socket connects to; the public address refuses at once (no traffic
    leaves the machine), anything else connects for real."""
    seen: list[tuple] = []

    def connect(sock, address):
        seen.append(tuple(address[:2]))
        if address[0] == PUBLIC:
            raise ConnectionRefusedError(111, "Connection refused")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def test_a_name_rebound_to_loopback_after_the_check_never_reaches_loopback(receiver, connects, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    port = receiver.server.server_address[1]
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host != "hooks.rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        # Public for the endpoint's check and the attempt's check; loopback for any later look-up.
        return answer(PUBLIC if len(lookups) <= 2 else "127.0.0.1", port)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    now = timezone.now()
    create_endpoint(
        url=f"http://hooks.rebind.example:{port}/hooks", events=None, organization=None, created_by_name="t", now=now
    )
    emit("license.created", {}, organization=None, now=now)
    assert run_webhooks(now=now)["failed_attempts"] == 1

    assert receiver.seen == []
    assert lookups == ["hooks.rebind.example"] * 2  # one for the endpoint, one for the attempt
    assert connects == [(PUBLIC, port)]  # the checked address, never 127.0.0.1
    assert "ConnectError" in WebhookAttempt.objects.get().error
    assert WebhookDelivery.objects.get().status == "pending"


def test_every_address_of_a_name_is_checked(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, port, *a, **k: answer(PUBLIC, port) + answer("10.0.0.7", port)
    )
    assert guard.url_problem("https://mixed.example/x") == (
        "host mixed.example resolves to a loopback, private or link-local address"
    )
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: answer(PUBLIC, port) + answer(PUBLIC, port))
    target = guard.resolve_target("https://public.example:8443/x")
    assert target == guard.Target("https://public.example:8443/x", "public.example", 8443, ((socket.AF_INET, PUBLIC),))


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(receiver, connects, monkeypatch):
    port = receiver.server.server_address[1]

    def no_dns(*args, **kwargs):
        raise AssertionError("a pinned request resolves nothing")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    target = guard.Target(f"http://hooks.example:{port}/in", "hooks.example", port, ((socket.AF_INET, "127.0.0.1"),))
    response = guard.post(target, '{"a":1}', {"content-type": "application/json"})
    assert response.status_code == 200
    assert receiver.seen[0]["headers"]["host"] == f"hooks.example:{port}"
    assert connects == [("127.0.0.1", port)]


def test_the_next_checked_address_is_tried_when_one_refuses(receiver, connects):
    port = receiver.server.server_address[1]
    addresses = ((socket.AF_INET, PUBLIC), (socket.AF_INET, "127.0.0.1"))
    target = guard.Target(f"http://hooks.example:{port}/in", "hooks.example", port, addresses)
    assert guard.post(target, "{}", {}).status_code == 200
    assert connects == [(PUBLIC, port), ("127.0.0.1", port)]


def test_the_pinned_backend_connects_to_nothing_but_its_target():
    backend = guard.PinnedBackend(guard.Target("http://a.example/", "a.example", 80, ((socket.AF_INET, PUBLIC),)))
    import httpcore

    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("b.example", 80)


def _certificate(tmp_path, name: str):
    """A CA and a certificate for ``name`` signed by it: (CA PEM path, cert path, key path)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_tls_keeps_the_name_for_sni_and_the_certificate_check(tmp_path):
    ca_path, cert_path, key_path = _certificate(tmp_path, "hooks.example")
    server_names: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    server_context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    trust = ssl.create_default_context(cafile=str(ca_path))
    loopback = ((socket.AF_INET, "127.0.0.1"),)
    try:
        target = guard.Target(f"https://hooks.example:{port}/in", "hooks.example", port, loopback)
        assert guard.post(target, "{}", {}, verify=trust).status_code == 204
        assert server_names == ["hooks.example"]
        # The same address under a name the certificate does not carry: refused by the client.
        other = guard.Target(f"https://other.example:{port}/in", "other.example", port, loopback)
        with pytest.raises(httpx.ConnectError, match="certificate"):
            guard.post(other, "{}", {}, verify=trust)
    finally:
        server.shutdown()
        server.server_close()


def test_private_hosts_allowed_deliver_to_loopback_names(receiver, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    port = receiver.server.server_address[1]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            answer("127.0.0.1", port) if host == "hooks.lan" else real_getaddrinfo(host, port, *a, **k)
        ),
    )
    now = timezone.now()
    create_endpoint(url=f"http://hooks.lan:{port}/in", events=None, organization=None, created_by_name="t", now=now)
    emit("license.created", {}, organization=None, now=now)
    assert run_webhooks(now=now, clock=timezone.now)["delivered"] == 1
    assert len(receiver.seen) == 1
