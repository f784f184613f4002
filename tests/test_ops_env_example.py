""".env.example documents every variable the settings, gunicorn.conf.py and the Celery app read,
and its uncommented lines, used as the environment, give a working development configuration."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_ops_deploy_check import ROOT, manage

EXAMPLE = (ROOT / ".env.example").read_text()


def variables_read() -> set[str]:
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z_][A-Z0-9_]*)"', (ROOT / "dls_admin/settings.py").read_text()))
    for path in ("gunicorn.conf.py", "dls_admin/celery.py"):
        names |= set(re.findall(r'environ(?:\.get\(|\[)\s*"([A-Z_][A-Z0-9_]*)"', (ROOT / path).read_text()))
    return names


def test_it_documents_every_variable():
    documented = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", EXAMPLE, flags=re.M))
    read = variables_read()
    assert len(read) > 30
    assert read - documented == set()


def test_its_values_make_a_working_development_configuration(tmp_path: Path):
    import os

    values = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", EXAMPLE, flags=re.M))
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **values}
    code = "from django.conf import settings as s; print(s.DJANGO_ENV, s.API_RATE_LIMIT, s.DEFAULT_FROM_EMAIL)"
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "development 60/m DLS Admin <noreply@localhost>"
