"""Production settings: `check --deploy` passes with no warning, and the settings refuse to
start without the secrets they need (secrets only from the environment)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# The test process's own switches (browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright).
_NOT_INHERITED = ("PYTEST_VERSION", "DJANGO_SETTINGS_MODULE", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="dls.example.com",
        SIGNING_KEYS="dGVzdC1rZXktbm90LXVzZWQtYnktdGhlLWNoZWNr",
        CSRF_TRUSTED_ORIGINS="https://dls.example.com",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        EMAIL_URL="smtp+tls://dls:secret@smtp.example.com:587",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_it_passes_check_deploy_with_no_warning():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNINGS" not in output and "security.W" not in output


def test_it_reads_the_proxy_header_and_trusted_origins_from_the_environment():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.DEBUG, s.LOG_FORMAT, s.STORAGES['staticfiles']['BACKEND'])"
    )
    result = manage("shell", "--no-imports", "-c", code, env=production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "['https://dls.example.com']",
        "True",
        "True",
        "True",
        "31536000",
        "False",
        "json",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short-key"}, "SECRET_KEY must be at least 50"),
        ({"SECRET_KEY": "dev-only-insecure-secret-key-change-me-0123456789"}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
        ({"SIGNING_KEYS": None, "SIGNING_KEY_FILE": None}, "SIGNING_KEYS or SIGNING_KEY_FILE"),
        ({"DEBUG": "true"}, "DEBUG must be off"),
        # The console backend would print working password-reset links into gunicorn's output.
        ({"EMAIL_URL": None}, "Production needs EMAIL_URL"),
        ({"EMAIL_URL": "consolemail://"}, "Production needs EMAIL_URL"),
        ({"EMAIL_URL": "memorymail://"}, "Production needs EMAIL_URL"),
    ],
)
def test_it_refuses_to_start_without_its_secrets(overrides, message):
    result = manage("check", env=production_env(**overrides))
    assert result.returncode != 0
    assert message in result.stderr


def test_it_runs_with_no_environment_at_all():
    """The embedded default: no variable set, no .env needed."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    result = manage(
        "shell", "--no-imports", "-c", "from django.conf import settings as s; print(s.DJANGO_ENV, s.DEBUG)", env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["development", "True"]


@pytest.mark.parametrize(
    "url, backend",
    [
        ("smtp+tls://dls:secret@smtp.example.com:587", "smtp"),
        ("filemail:///var/tmp/dls-mail", "filebased"),
        ("dummymail://", "dummy"),
    ],
)
def test_it_starts_with_a_real_or_an_explicit_email_backend(url, backend):
    code = "from django.conf import settings as s; print(s.EMAIL_BACKEND)"
    result = manage("shell", "--no-imports", "-c", code, env=production_env(EMAIL_URL=url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == f"django.core.mail.backends.{backend}.EmailBackend"
