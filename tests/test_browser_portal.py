"""The portal in a real browser: Debian's Chromium driven by Playwright against live_server.

Login, reading quota bars, releasing a seat, reordering items, downloading a CSV, and a
screenshot of every page (desktop and phone width) in test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from tests.factories import world

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
PASSWORD = "pw-Test-12345"  # tests.factories.user's password

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def browser():
    playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls of these
    # tests are plain synchronous code, so Django's async-safety check must be told so (only
    # while the browser runs: the rest of the suite keeps the check).
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    pw = playwright_sync.sync_playwright().start()
    b = pw.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield b
    b.close()
    pw.stop()
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def w(transactional_db):
    return world(timezone.now(), devices=5)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def new_page(browser, *, phone: bool = False):
    viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    # Console errors (a CSP violation, a missing static file, a script error) fail the test.
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("response", lambda r: r.status >= 400 and page.console_errors.append(f"{r.status} {r.url}"))
    return page


def log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + reverse("login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_it_logs_in_and_reads_the_quota_bars(browser, live_server, w):
    page = new_page(browser)
    page.goto(live_server.url + reverse("login"))
    assert page.get_by_label("Password").is_visible()
    shot(page, "login")
    log_in(page, live_server, w.owner.username)
    assert page.url == live_server.url + reverse("portal:home")
    bar = page.get_by_role("img", name=re.compile(r"^Barcode scans: 8500 of 10000 scans used, 85\.0 percent"))
    assert bar.count() == 1
    meter = page.locator(".meter", has=bar)
    assert "85.0 %" in meter.inner_text() and "8,500" in meter.inner_text()
    assert "meter-warn" in meter.get_attribute("class")
    # The bar's fill is drawn at 85 % of its track.
    assert bar.locator("rect.fill").get_attribute("width") == "85.00"
    assert "runs out on" in meter.inner_text()
    # The stylesheet loaded under the content security policy, and nothing was refused.
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor") == "rgb(20, 32, 51)"
    )
    assert page.console_errors == []
    shot(page, "home")
    page.context.close()


def test_it_fits_a_phone_screen(browser, live_server, w):
    page = new_page(browser, phone=True)
    log_in(page, live_server, w.owner.username)
    for name, url in [
        ("home-phone", reverse("portal:home")),
        ("project-phone", reverse("portal:project", args=[w.project.pk])),
        ("devices-phone", reverse("portal:devices", args=[w.project.pk])),
    ]:
        page.goto(live_server.url + url)
        # Nothing wider than the screen: tables scroll inside their own box.
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391)"
            ".filter((e) => !e.closest('.table-wrap')).map((e) => e.tagName + '.' + e.className).slice(0, 5)"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, (name, wide)
        shot(page, name)
    page.context.close()


def test_it_releases_a_seat(browser, live_server, w):
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:devices", args=[w.project.pk]))
    shot(page, "devices")
    with page.expect_navigation():
        page.get_by_role("link", name="Release the seat of Front desk 0").click()
    with page.expect_navigation():  # the confirmation says what it will do, then acts
        page.get_by_role("button", name="Release Front desk 0").click()
    assert "Released Front desk 0" in page.get_by_role("status").first.inner_text()
    w.device.refresh_from_db()
    assert w.device.state == Device.RELEASED
    assert page.get_by_role("link", name="Release the seat of Front desk 0").count() == 0
    shot(page, "devices-released")
    page.goto(live_server.url + reverse("portal:device", args=[w.device.pk]))
    shot(page, "device-history")
    page.context.close()


def test_it_reorders_items_with_the_keyboard(browser, live_server, w):
    first, second = list(w.project.items_in_order())[:2]
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:project", args=[w.project.pk]))
    shot(page, "project")
    # Reach the button with the keyboard: focus is visible on it.
    button = page.get_by_role("button", name=f"Move item #{first.pk} down")
    for _ in range(60):
        page.keyboard.press("Tab")
        if button.evaluate("(b) => b === document.activeElement"):
            break
    assert button.evaluate("(b) => b === document.activeElement")
    assert button.evaluate("(b) => getComputedStyle(b).outlineStyle") == "solid"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Consumption order saved." in page.content()
    order = [i.pk for i in w.project.items_in_order()]
    assert order[:2] == [second.pk, first.pk]
    shown = page.locator("ol.items > li").evaluate_all("(els) => els.map((e) => e.id)")
    assert page.console_errors == []
    assert shown[:2] == [f"item-{second.pk}", f"item-{first.pk}"]
    # The keyboard stays on the moved item's button: Enter again moves it further.
    assert page.evaluate("document.activeElement.id") == f"move-{first.pk}-down"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == w.project.license_key
    page.context.close()


def test_it_downloads_a_csv(browser, live_server, w, tmp_path):
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:statistics", args=[w.project.pk]))
    shot(page, "statistics")
    with page.expect_download() as info:
        page.get_by_role("link", name="Devices seen in the period").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        "device_uuid,item,client_type,origin,device_name,first_authorized_at,last_seen_at,active_until,state"
    )
    assert any("Front desk 0" in line for line in lines[1:])
    page.goto(live_server.url + reverse("portal:concurrency", args=[w.project.pk]))
    shot(page, "concurrency")
    page.goto(live_server.url + reverse("portal:alert_recipients", args=[w.org.pk]))
    page.get_by_label("Email address").fill("ops@acme.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Add").click()
    assert "ops@acme.example will receive" in page.content()
    shot(page, "alert-recipients")
    page.context.close()


def test_it_shows_staff_their_dashboard(browser, live_server, w):
    page = new_page(browser)
    log_in(page, live_server, w.staff.username)
    assert page.url == live_server.url + reverse("portal:staff_dashboard")
    assert page.get_by_role("heading", name="Staff dashboard").is_visible()
    link = page.get_by_role("link", name=w.scan.license.license_id).first
    assert link.get_attribute("href") == reverse("admin:licenses_license_change", args=[w.scan.license_id])
    shot(page, "staff-dashboard")
    page.context.close()
