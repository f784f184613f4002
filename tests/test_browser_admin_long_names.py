"""Long names in the Django admin's change lists (Debian's Chromium, Playwright, live_server): a
255-character device name, a 128-character license id and project and organization names at
their maximum never make a list scroll sideways at 1366 or 390 px
(``document.documentElement.scrollWidth <= innerWidth``); a cut cell carries the full text on
hover (``title``), and the change form shows it whole. Screenshots in
test-artifacts/screenshots/admin-long-name-{desktop,phone}.png (the device list) and per list."""

# ruff: noqa: F811  (the browser fixture comes from tests.test_browser_portal)
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from licenses.audit import record_audit
from tests import factories
from tests.factories import world
from tests.test_browser_portal import PASSWORD, SCREENSHOTS, browser, pytestmark  # noqa: F401

LONG_NAME = ("Reception kiosk in the north building, second floor, " * 6)[:255]
LONG_ID = "L-" + "X" * 126  # no space to break at: the hardest case
LONG_PROJECT = "p" + "-kiosks" * 18 + "-" * 1  # 128 characters
LONG_ORG = ("Acme Consolidated Holdings and Subsidiaries " * 6)[:255]


@pytest.fixture
def w(transactional_db):
    now = timezone.now()
    w = world(now, devices=2)
    w.org.name = LONG_ORG
    w.org.save(update_fields=["name"])
    project = factories.ProjectFactory(organization=w.org, name=LONG_PROJECT[:128])
    lic = factories.LicenseFactory(organization=w.org, license_id=LONG_ID)
    item = factories.LicenseItemFactory(per_client_device=True, license=lic, project=project, quantity=3)
    w.long_device = factories.DeviceFactory(item=item, now=now, client_type="web", device_name=LONG_NAME,
                                            origin="https://" + "a" * 60 + ".acme.example")  # fmt: skip
    factories.DecisionFactory(device=w.long_device, now=now, allowed=False, rule="seats_exhausted",
                              counts={"active": 4, "quantity": 3, "ceiling": 3})  # fmt: skip
    record_audit(actor=w.staff, action="license.import", obj=lic, before={}, after={"license_id": LONG_ID})
    w.long_license = lic
    w.superuser = factories.UserFactory(username="long-names-admin", is_staff=True, is_superuser=True)
    return w


def admin_page(browser, live_server, width: int):
    context = browser.new_context(viewport={"width": width, "height": 844 if width < 800 else 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.goto(live_server.url + reverse("admin:login"))
    return page


def log_in_admin(page, username: str) -> None:
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("input[type=submit]").click()


LISTS = {
    "licenses": "admin:licenses_license_changelist",
    "items": "admin:licenses_licenseitem_changelist",
    "projects": "admin:licenses_project_changelist",
    "organizations": "admin:licenses_organization_changelist",
    "devices": "admin:devices_device_changelist",
    "decisions": "admin:devices_decision_changelist",
    "audit": "admin:licenses_auditlog_changelist",
}
# The long text each list shows (in a cell, or in a link inside one).
SHOWN = {
    "licenses": LONG_ID,
    "items": LONG_ID,
    "projects": LONG_PROJECT[:128],
    "organizations": LONG_ORG,
    "devices": LONG_NAME,
    "decisions": LONG_PROJECT[:128],  # the device is named by its UUID there
    "audit": LONG_ID,
}


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def hover_text(page, text: str) -> str | None:
    """The title of the list cell (or its link) that holds ``text``, as a pointer hovering it reads."""
    return page.evaluate(
        """(text) => {
            for (const el of document.querySelectorAll('#result_list td, #result_list th')) {
                if (el.textContent.includes(text.slice(0, 40))) {
                    const titled = el.closest('[title]') || el.querySelector('[title]');
                    return titled ? titled.getAttribute('title') : null;
                }
            }
            return null;
        }""",
        text,
    )


@pytest.mark.parametrize("width", [1366, 390])
def test_admin_lists_never_scroll_sideways_and_keep_the_full_text(browser, live_server, w, width):
    suffix = "phone" if width == 390 else "desktop"
    page = admin_page(browser, live_server, width)
    log_in_admin(page, w.superuser.username)
    for name, url_name in LISTS.items():
        page.goto(live_server.url + reverse(url_name))
        assert page.locator("#result_list").count() == 1, name
        width_now = page.evaluate("document.documentElement.scrollWidth")
        assert fits(page), (name, width, width_now)
        assert hover_text(page, SHOWN[name]) == SHOWN[name], (name, "no full text on hover")
        shot_name = f"admin-long-name-{suffix}" if name == "devices" else f"admin-long-name-{name}-{suffix}"
        page.screenshot(path=str(SCREENSHOTS / f"{shot_name}.png"), full_page=True)
    # The change forms show the whole text.
    page.goto(live_server.url + reverse("admin:devices_device_change", args=[w.long_device.pk]))
    assert fits(page), ("device form", width)
    assert LONG_NAME in page.locator("#content").inner_text() or (
        page.locator("#id_device_name").count() and page.locator("#id_device_name").input_value() == LONG_NAME
    )
    page.goto(live_server.url + reverse("admin:licenses_license_change", args=[w.long_license.pk]))
    assert fits(page), ("license form", width)
    assert page.locator("#id_license_id").input_value() == LONG_ID
    assert page.console_errors == []
    page.context.close()
