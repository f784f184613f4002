"""A real Celery worker and beat (subprocesses) run a job whose effect the test observes in
the database it shares with them: against Redis (db 4) on PostgreSQL, and on the embedded
default's filesystem broker. ``DLS_BEAT_FAST_SECONDS`` makes beat send expire_idle_devices every
second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from devices.models import Device
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REDIS_URL = "redis://127.0.0.1:6379/4"
CELERY = str(Path(sys.executable).with_name("celery"))
ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


def start(args, env, log):
    return subprocess.Popen([CELERY, "-A", "dls_admin", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_worker_and_beat(tmp_path, extra_env):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DLS_BEAT_FAST_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    if "REDIS_URL" not in extra_env:
        env.pop("REDIS_URL", None)
    now = timezone.now()
    item = factories.LicenseItemFactory()
    idle = factories.DeviceFactory(item=item, active_until=now - timedelta(minutes=1))
    busy = factories.DeviceFactory(item=item, active_until=now + timedelta(hours=1))
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    with open(worker_log, "w") as wl, open(beat_log, "w") as bl:
        worker = start(["worker", "--pool=solo", "--loglevel=INFO", "--without-mingle", "--without-gossip"], env, wl)
        beat = start(["beat", "--loglevel=INFO", "--max-interval=1"], env, bl)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if Device.objects.get(pk=idle.pk).state == Device.EXPIRED:
                    break
                time.sleep(0.25)
        finally:
            for process in (beat, worker):
                process.terminate()
            for process in (beat, worker):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
    logs = worker_log.read_text() + beat_log.read_text()
    assert Device.objects.get(pk=idle.pk).state == Device.EXPIRED, logs
    assert Device.objects.get(pk=busy.pk).state == Device.ACTIVE
    assert "Sending due task expire_idle_devices (usage.expire_idle_devices)" in beat_log.read_text()
    assert "usage.expire_idle_devices" in worker_log.read_text() and "succeeded" in worker_log.read_text()
    # beat loaded the code's schedule into the shared database (what staff see in the admin).
    assert PeriodicTask.objects.filter(name__in=["rollup_usage", "purge_old_data"]).count() == 2


def test_worker_and_beat_against_redis_expire_a_device(postgres_only, tmp_path):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()  # our own db number only
    try:
        run_worker_and_beat(tmp_path, {"REDIS_URL": REDIS_URL})
    finally:
        client.flushdb()


def test_worker_and_beat_on_the_embedded_filesystem_broker_expire_a_device(tmp_path):
    run_worker_and_beat(tmp_path, {"DLS_BROKER_DIR": str(tmp_path / "broker")})
