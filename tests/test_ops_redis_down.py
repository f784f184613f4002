"""Redis down, for real: a private ``redis-server`` on a free port, killed (SIGKILL) and hung
(SIGSTOP) inside the test. The device API keeps answering 200 within the socket timeout, its rate
limits fall back to per-process counts, logins work (attempts are in the database), and
``/healthz`` says "degraded" with 200, so the load balancer keeps the process; every answer is
quick. Skipped when redis-server is not installed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
from django.test import Client

from api import ratelimit
from tests import factories

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
    pytest.mark.django_db,
    pytest.mark.slow,
]
TIMEOUT_S = 0.25  # CACHE_SOCKET_TIMEOUT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path, settings):
    """A private Redis, and the settings pointing the cache and the health check at it."""
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--logfile", str(tmp_path / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    probe = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:  # wait until it accepts commands
        try:
            probe.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {(tmp_path / 'redis.log').read_text()}") from None
            time.sleep(0.02)
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": TIMEOUT_S, "socket_timeout": TIMEOUT_S},
        }
    }
    settings.CACHE_SOCKET_TIMEOUT = TIMEOUT_S
    settings.API_RATE_LIMIT = "5/m"
    settings.API_RATE_LIMIT_ADDRESS = "0"
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_ADDRESS = 30
    ratelimit.reset_degradation()
    from django.core.cache import cache

    cache.get("warm-up")  # the client and its connection exist before the fault, as in a server
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.wait(timeout=10)
        ratelimit.reset_degradation()


def timed(call):
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def check_everything_serves(redis_process, label: str) -> dict[str, float]:
    """Authorize, a rate limit that still holds per process, logins and /healthz, timed."""
    item = factories.LicenseItemFactory(quantity=100)
    client = Client()
    answers = [timed(lambda i=i: factories.authorize(client, item.project, f"{label}-{i}")) for i in range(20)]
    assert [r.status_code for r, _ in answers] == [200] * 20, [r.content for r, _ in answers if r.status_code != 200]
    # The per-device limit (5/m) still holds, counted in this process: the 6th request is 429.
    same_device = [factories.authorize(client, item.project, f"{label}-same").status_code for _ in range(6)]
    assert same_device == [200] * 5 + [429]

    user = factories.UserFactory()
    login = lambda password, address="192.0.2.30": client.post(  # noqa: E731
        "/accounts/login/", {"username": user.username, "password": password}, REMOTE_ADDR=address
    )
    for _ in range(3):
        assert login("wrong").status_code == 200
    assert "Too many failed login attempts" in login(factories.PASSWORD).content.decode()  # still throttled
    logged_in, login_s = timed(lambda: login(factories.PASSWORD, address="192.0.2.31"))
    assert logged_in.status_code == 302

    health, health_s = timed(lambda: Client().get("/healthz"))
    assert health.status_code == 200  # the web probe keeps the process in rotation
    body = health.json()
    assert body["status"] == "degraded" and body["degraded"] == ["redis"] and body["database"] == "ok"
    assert body["redis"].startswith("error") and body["rate_limit_cache_errors"] >= 1
    assert ratelimit.degradation["errors"] >= 1
    times = sorted(s for _, s in answers)
    figures = {"authorize_max_s": times[-1], "authorize_median_s": times[len(times) // 2], "login_s": login_s,
               "healthz_s": health_s}  # fmt: skip
    # The first request after the failure pays the socket timeout at most a few times; the rest
    # go straight to the per-process counts.
    assert figures["authorize_max_s"] < 12 * TIMEOUT_S and figures["authorize_median_s"] < 2 * TIMEOUT_S, figures
    assert health_s < 4 * TIMEOUT_S, figures
    print(f"\nredis {label}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items()))
    return figures


def test_it_serves_through_redis_being_killed(redis_server):
    item = factories.LicenseItemFactory()
    assert factories.authorize(Client(), item.project, "before").status_code == 200
    assert Client().get("/healthz").json()["redis"] == "ok"
    assert ratelimit.degradation["errors"] == 0  # counted in Redis while it runs

    redis_server.send_signal(signal.SIGKILL)
    redis_server.wait(timeout=10)
    check_everything_serves(redis_server, "killed")


def test_it_serves_through_redis_hanging_and_comes_back(redis_server):
    redis_server.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        check_everything_serves(redis_server, "hung")
    finally:
        redis_server.send_signal(signal.SIGCONT)
    # Back: after the pause the limits count in Redis again and /healthz is ok.
    ratelimit._breaker["skip_cache_until"] = 0.0  # the pause (CACHE_RETRY_AFTER_S) is over
    errors = ratelimit.degradation["errors"]
    item = factories.LicenseItemFactory()
    assert factories.authorize(Client(), item.project, "after").status_code == 200
    assert ratelimit.degradation["errors"] == errors
    assert Client().get("/healthz").json()["status"] == "ok"
