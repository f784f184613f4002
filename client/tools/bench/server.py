"""The production server of ``bench_api``: gunicorn with gunicorn.conf.py and the production
settings on 127.0.0.1 (plain HTTP: TLS is the load balancer's), Redis db 5 as cache when it
answers."""

from __future__ import annotations

import os
import runpy
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.core.management.base import CommandError
from django.db import connection

from client.tools.bench.common import ROOT, database_url, redis_up

REDIS_BENCH_URL = "redis://127.0.0.1:6379/5"


def start_gunicorn(port: int, tmp: Path, say) -> tuple[subprocess.Popen, dict]:
    from devices.signing import generate_private_key_text

    key_file = tmp / "signing-key.txt"
    key_file.write_text(generate_private_key_text() + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update(
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        BASE_URL=f"http://127.0.0.1:{port}",
        SIGNING_KEY_FILE=str(key_file),
        DATABASE_URL=database_url(connection.settings_dict, connection.settings_dict["NAME"]),
        # Plain HTTP on loopback: TLS, and so the redirect and secure cookies, belong to the proxy.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        API_RATE_LIMIT="1000000/m",  # counted (the cost is measured) but never reached
        API_RATE_LIMIT_ADDRESS="1000000/m",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        LOG_LEVEL="WARNING",
        STATIC_ROOT=str(tmp / "static"),
        EMAIL_URL="dummymail://",  # production refuses the console backend; the bench sends no mail
    )
    if redis_up():
        env["REDIS_URL"] = REDIS_BENCH_URL
    else:
        env.pop("REDIS_URL", None)
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, capture_output=True
    )
    if collect.returncode:
        raise CommandError(f"collectstatic failed: {collect.stderr.decode()[-500:]}")
    log = open(tmp / "gunicorn.log", "wb")  # noqa: SIM115 (closed with the directory)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", "dls_admin.wsgi"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180  # workers import Django one after the other on a busy machine
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(f"gunicorn exited: {(tmp / 'gunicorn.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        server.kill()
        raise CommandError("gunicorn did not answer /healthz within 180 s")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # its defaults, and the environment's overrides
    info = {
        "workers": int(conf["workers"]),
        "threads": int(conf["threads"]),
        "redis": "REDIS_URL" in env,
    }
    say(f"gunicorn on 127.0.0.1:{port} ({info['workers']} workers x {info['threads']} threads)")
    return server, info


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
