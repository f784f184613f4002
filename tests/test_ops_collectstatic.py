"""Static files: collectstatic with the production storage (whitenoise, compressed, hashed names)
collects the portal's, the admin's and the API docs' assets, and the manifest resolves them."""

from __future__ import annotations

import json

import pytest

from tests.test_ops_deploy_check import manage, production_env


@pytest.mark.slow
def test_it_collects_static_files_with_the_production_storage(tmp_path):
    result = manage("collectstatic", "--noinput", env=production_env(STATIC_ROOT=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    for name in ("css/portal.css", "js/portal.js", "admin/css/base.css", "ninja/swagger-ui-bundle.js"):
        hashed = manifest[name]
        assert hashed != name and (tmp_path / hashed).is_file()
        assert (tmp_path / f"{hashed}.gz").is_file()  # compressed copies for whitenoise

    # Pages link the hashed names (the manifest storage resolves them in production).
    code = (
        "from django.test import Client; "
        "r = Client(HTTP_HOST='dls.example.com').get('/accounts/login/', secure=True); "
        "print(r.status_code); print(r.content.decode())"
    )
    page = manage("shell", "--no-imports", "-c", code, env=production_env(STATIC_ROOT=str(tmp_path)))
    assert page.returncode == 0, page.stderr
    status, html = page.stdout.split("\n", 1)
    assert status == "200"
    assert f"/static/{manifest['css/portal.css']}" in html
