"""Process definitions: the Procfile and the systemd units run the same commands (web with
gunicorn.conf.py, a Celery worker, exactly one beat), and gunicorn.conf.py reads its settings
from the environment."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys

import pytest

from tests.test_ops_deploy_check import ROOT, production_env


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_the_procfile_defines_web_worker_one_beat_and_a_release_step():
    processes = procfile()
    assert set(processes) == {"release", "web", "worker", "beat"}
    assert processes["web"] == "gunicorn -c gunicorn.conf.py dls_admin.wsgi"
    assert processes["worker"].startswith("celery -A dls_admin worker")
    assert processes["beat"].startswith("celery -A dls_admin beat")
    assert "migrate --noinput" in processes["release"] and "collectstatic --noinput" in processes["release"]


@pytest.mark.parametrize("unit, process", [("dls-web", "web"), ("dls-worker", "worker"), ("dls-beat", "beat")])
def test_the_systemd_units_run_the_procfile_commands(unit, process):
    text = (ROOT / "deploy" / f"{unit}.service").read_text()
    exec_start = re.search(r"^ExecStart=/opt/dls-admin/\.venv/bin/(.+)$", text, flags=re.M).group(1)
    expected = procfile()[process].replace("${CELERY_CONCURRENCY:-4}", "${CELERY_CONCURRENCY}")
    assert exec_start == expected
    assert "EnvironmentFile=/etc/dls-admin/env" in text and "Environment=DJANGO_ENV=production" in text
    assert re.search(r"^Restart=on-failure$", text, flags=re.M)


def test_only_one_beat_is_defined_anywhere():
    units = list((ROOT / "deploy").glob("*.service"))
    beats = [u.name for u in units if " beat" in u.read_text()]
    assert beats == ["dls-beat.service"]
    assert "EXACTLY ONE" in (ROOT / "deploy" / "dls-beat.service").read_text()


def test_gunicorn_reads_bind_workers_and_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:9000")
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "8")
    monkeypatch.setenv("LOG_FORMAT", "json")
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (config["bind"], config["workers"], config["threads"], config["worker_class"]) == (
        "0.0.0.0:9000", 3, 8, "gthread",
    )  # fmt: skip
    assert config["accesslog"] == "-" and config["control_socket_disable"] is True
    assert config["logconfig_dict"]["handlers"]["console"]["formatter"] == "json"


def test_gunicorn_defaults_to_loopback(monkeypatch):
    for name in ("GUNICORN_BIND", "HOST", "PORT", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == "127.0.0.1:8000" and config["threads"] == 2
    assert config["workers"] == (os.cpu_count() or 1) + 1
    monkeypatch.setenv("PORT", "5000")  # a platform's router sends traffic there from outside
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == "0.0.0.0:5000"


@pytest.mark.slow
def test_gunicorn_accepts_the_config_and_loads_the_app_in_production():
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    result = subprocess.run(
        [gunicorn, "--check-config", "-c", "gunicorn.conf.py", "dls_admin.wsgi"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
