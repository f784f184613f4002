"""The content security policy: the header is on every page, and in a real browser the portal,
the admin and the API docs (Swagger UI) work under it with no violation."""

from __future__ import annotations

import os
import re

import pytest
from django.urls import reverse
from django.utils import timezone

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-Test-12345"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/api/v1/docs", "/healthz"])
def test_it_sends_the_policy_on_every_page(client, settings, url):
    response = client.get(url)
    assert response.status_code == 200
    directives = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_it_serves_the_api_docs_from_our_own_static_files(client):
    html = client.get("/api/v1/docs").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets)
    assert all(a.startswith("/") for a in assets), assets  # no CDN
    assert not re.search(r"<script>(?!\s*</script>)", html)  # no inline script


def test_it_reads_the_policy_from_the_environment():
    from tests.test_ops_deploy_check import manage, production_env

    code = (
        "from django.test import Client; r = Client().get('/healthz', HTTP_HOST='dls.example.com', secure=True); "
        "print(r.get('Content-Security-Policy')); print(r.get('Content-Security-Policy-Report-Only'))"
    )
    trial = "default-src 'self'; img-src 'self' https://cdn.example.com; upgrade-insecure-requests"
    env = production_env(CONTENT_SECURITY_POLICY=trial, CSP_REPORT_ONLY="true", DATABASE_URL="sqlite:///:memory:")
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    enforced, report_only = result.stdout.split("\n")[-3:-1]
    assert enforced == "None"
    assert sorted(report_only.split("; ")) == sorted(trial.split("; "))

    env = production_env(CONTENT_SECURITY_POLICY="", DATABASE_URL="sqlite:///:memory:")
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-3:-1] == ["None", "None"]  # empty: no policy at all


@pytest.mark.django_db
def test_it_keeps_a_policy_a_response_sets_itself(rf, settings):
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse

    def view(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = CSPMiddleware(view)(rf.get("/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"


# In a browser ----------------------------------------------------------------------------------

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop; the ORM calls are sync


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pw = playwright_sync.sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
    yield b
    b.close()
    pw.stop()


def watched_page(browser):
    page = browser.new_page()
    page.violations = []
    page.on(
        "console",
        lambda msg: page.violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.on("pageerror", lambda exc: page.violations.append(f"page error: {exc}"))
    return page


def login(page, base, url, username):
    page.goto(base + url)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_load_state("networkidle")


@pytest.mark.browser
@pytest.mark.slow
def test_it_renders_the_api_docs_under_the_policy(browser, live_server):
    page = watched_page(browser)
    page.goto(live_server.url + "/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    assert "DLS Admin device API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock", timeout=15000)  # the operations, from openapi.json
    page.close()
    assert page.violations == []


@pytest.mark.browser
@pytest.mark.slow
def test_it_runs_the_admin_and_the_portal_under_the_policy(browser, live_server, transactional_db):
    from tests.factories import world

    w = world(timezone.now(), devices=5)
    pk = w.project.pk

    page = watched_page(browser)
    login(page, live_server.url, "/admin/login/", w.staff.username)
    assert page.url.endswith("/admin/")
    admin_urls = [
        "/admin/licenses/license/",
        reverse("admin:licenses_license_change", args=[w.scan.license_id]),
        "/admin/devices/device/",
        "/admin/auth/user/add/",
        reverse("portal:staff_dashboard"),
    ]
    for url in admin_urls:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
    page.close()

    portal = watched_page(browser)
    login(portal, live_server.url, reverse("login"), w.owner.username)
    portal_urls = [
        reverse("portal:home"),
        reverse("portal:project", args=[pk]),
        reverse("portal:devices", args=[pk]),
        reverse("portal:device", args=[w.device.pk]),
        reverse("portal:statistics", args=[pk]),
        reverse("portal:concurrency", args=[pk]),
        reverse("portal:alert_recipients", args=[w.org.pk]),
    ]
    for url in portal_urls:
        response = portal.goto(live_server.url + url)
        assert response.status == 200, url
        portal.wait_for_load_state("networkidle")
    portal.close()
    assert page.violations == [] and portal.violations == []
