"""Slow clients: 60 connections sending a body at 1 byte/s. Straight to gunicorn they hold every
thread and the `/healthz/ping` probes time out (the fault); behind a real nginx with the
slow-client settings of deploy/nginx.conf, the probes keep answering. Both servers run on free
loopback ports; skipped when nginx is not installed (Debian's package `nginx`)."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_ops_deploy_check import ROOT

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = [pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
              pytest.mark.slow]  # fmt: skip

SLOW_CLIENTS = 60
PROBE_TIMEOUT_S = 1.0
THREADS = 4  # gunicorn: one worker of 4 threads, so 60 slow clients are far more than it has


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_client_settings() -> str:
    """The block of deploy/nginx.conf under "slow clients", as shipped."""
    text = (ROOT / "deploy/nginx.conf").read_text()
    block = re.search(r"# --- slow clients.*?\n(.*?)\n\n", text, flags=re.S).group(1)
    assert "client_body_timeout" in block and "proxy_request_buffering on" in block
    return block


def nginx_config(tmp: Path, listen: int, upstream: int) -> str:
    return f"""
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    upstream dls_web {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{listen};
{slow_client_settings()}
        location / {{
            proxy_pass http://dls_web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def ping(port: int) -> float | None:
    """Seconds /healthz/ping took, or None when it did not answer 200 within the timeout."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
        conn.request("GET", "/healthz/ping", headers={"Host": "127.0.0.1"})
        ok = conn.getresponse().status == 200
        conn.close()
    except OSError:
        return None
    return time.perf_counter() - started if ok else None


def wait_until_up(port: int, process: subprocess.Popen, what: str) -> None:
    # Generous: on a loaded CI machine gunicorn's import of Django alone can take tens of seconds;
    # the start is not what this test measures.
    deadline = time.monotonic() + 90
    while ping(port) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit {process.poll()})")
        time.sleep(0.05)


@pytest.fixture
def servers(tmp_path):
    gunicorn_port, nginx_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "DJANGO_SETTINGS_MODULE")}
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{gunicorn_port}", GUNICORN_WORKERS="1", GUNICORN_THREADS=str(THREADS),
        GUNICORN_ACCESS_LOG="/dev/null", GUNICORN_GRACEFUL_TIMEOUT="2", DJANGO_ENV="development", DEBUG="false", LOG_LEVEL="WARNING",
    )  # fmt: skip
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "dls_admin.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir()
    (tmp_path / "nginx.conf").write_text(nginx_config(tmp_path, nginx_port, gunicorn_port))
    nginx = subprocess.Popen(
        [NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_up(gunicorn_port, gunicorn, "gunicorn")
        wait_until_up(nginx_port, nginx, f"nginx ({(tmp_path / 'error.log').read_text()[-500:]})")
        yield {"gunicorn": gunicorn_port, "nginx": nginx_port}
    finally:
        for process in (nginx, gunicorn):
            process.terminate()
        for process in (nginx, gunicorn):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


class SlowClients:
    """``n`` connections that each send a 1,000-byte JSON body one byte a second."""

    def __init__(self, port: int, n: int):
        self.sockets = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(
                b"POST /api/v1/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            self.sockets.append(s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self):
        while not self.stop.wait(1.0):
            for s in self.sockets:
                try:
                    s.send(b" ")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for s in self.sockets:
            s.close()


def probe(port: int, seconds: float) -> list[float | None]:
    results, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        results.append(ping(port))
        time.sleep(0.2)
    return results


def test_probes_keep_answering_behind_nginx_while_60_clients_send_1_byte_a_second(servers):
    started = time.monotonic()
    slow = SlowClients(servers["nginx"], SLOW_CLIENTS)
    try:
        time.sleep(1.2)  # let the drip begin: every slow connection is mid-body now
        behind_nginx = probe(servers["nginx"], 3)
    finally:
        slow.close()
    # The fault itself, for contrast: the same clients straight to gunicorn hold all its threads.
    slow = SlowClients(servers["gunicorn"], SLOW_CLIENTS)
    try:
        time.sleep(1.2)
        direct = probe(servers["gunicorn"], 2)
    finally:
        slow.close()

    answered = [t for t in behind_nginx if t is not None]
    assert len(answered) == len(behind_nginx) >= 8, behind_nginx
    assert max(answered) < PROBE_TIMEOUT_S
    assert direct.count(None) == len(direct), direct  # every direct probe timed out
    print(
        f"\nslow clients: {SLOW_CLIENTS} at 1 byte/s; behind nginx {len(answered)}/{len(behind_nginx)} probes "
        f"answered, max {max(answered) * 1000:.0f} ms; straight to gunicorn ({THREADS} threads) "
        f"{direct.count(None)}/{len(direct)} timed out; {time.monotonic() - started:.1f} s"
    )
