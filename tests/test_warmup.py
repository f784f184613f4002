"""A web worker's boot (dls_admin.warmup, dls_admin.wsgi): every template of the project compiled
into the cached loader before the first request, a template that does not compile failing the
boot, and the boot's objects frozen out of the garbage collector's full collections."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.template import TemplateSyntaxError, engines
from django.test import override_settings

from dls_admin.warmup import template_names, warm


def _cached_loader():
    loader = engines["django"].engine.template_loaders[0]
    assert type(loader).__name__ == "Loader" and hasattr(loader, "get_template_cache"), "not the cached loader"
    return loader


def test_every_template_of_the_project_is_named():
    names = template_names()
    assert "portal/statistics.html" in names and "partials/pagination.html" in names
    assert "emails/usage_alert_subject.txt" in names  # not only .html
    on_disk = sum(1 for p in (settings.BASE_DIR / "templates").rglob("*") if p.is_file())
    assert len(names) == on_disk


def test_warm_compiles_every_template_into_the_cached_loader():
    loader = _cached_loader()
    loader.reset()
    assert warm() == len(template_names())
    cached = loader.get_template_cache
    missing = [name for name in template_names() if name not in cached]
    assert not missing
    # The next request's lookup is the cached object itself, not a new compilation.
    assert engines["django"].get_template("portal/statistics.html").template is cached["portal/statistics.html"]


def test_a_template_that_does_not_compile_fails_the_warm_up(tmp_path):
    (tmp_path / "broken.html").write_text("{% if %}")
    backend = dict(settings.TEMPLATES[0], DIRS=[tmp_path])
    with override_settings(TEMPLATES=[backend]), pytest.raises(TemplateSyntaxError):
        warm()


def test_a_worker_boot_freezes_what_it_loaded():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dls_admin.settings"}
    env.pop("PYTEST_VERSION", None)
    script = (
        "import gc, dls_admin.wsgi\n"
        "from django.template import engines\n"
        "print(gc.get_freeze_count(), len(engines['django'].engine.template_loaders[0].get_template_cache))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    frozen, templates = map(int, result.stdout.split())
    assert frozen > 10_000  # the modules, the URLconf and the templates of a booted worker
    assert templates == len(template_names())
