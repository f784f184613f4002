"""Insight in a real browser (Chromium, Playwright, live_server): an owner asks "what if we had 8
seats", reads the answer and the right quantity, releases burned seats (confirm, then undo), reads
the anomaly flags of a project driven by a key-sharing scenario; staff read the upsell list.
Screenshots in test-artifacts/screenshots/insight-*.png."""

from __future__ import annotations

import os

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from tests import factories
from tests.factories import auth_body, post, world
from tests.test_browser_portal import CHROMIUM, browser, log_in, new_page, shot  # noqa: F401 (the fixture)
from usage.anomalies import detect_anomalies

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


@pytest.fixture
def scenario(transactional_db, settings):
    settings.API_RATE_LIMIT = "0"
    settings.API_RATE_LIMIT_ADDRESS = "0"
    w = world(timezone.now(), devices=2)
    project = factories.ProjectFactory(organization=w.org, name="Kiosks")
    item = factories.LicenseItemFactory(project=project, license=w.seats.license, quantity=6, device_grace_percent=0)
    api = Client()
    for k in range(4):  # one browser clearing its cache three times
        body = auth_body(project, f"win-{k}", client_type="web", origin="https://app.acme.com", platform="windows")
        post(api, "authorize", body, REMOTE_ADDR="203.0.113.5")
    for k in range(4):  # kiosks; kiosk-0's key also used from a far network minutes later
        post(api, "authorize", auth_body(project, f"kiosk-{k}"), REMOTE_ADDR="203.0.113.9")
    post(api, "authorize", auth_body(project, "kiosk-0"), REMOTE_ADDR="198.51.100.77")
    for k in range(30):
        post(api, "authorize", auth_body(project, "kiosk-9"), REMOTE_ADDR=f"100.{k}.1.1")
    detect_anomalies(now=timezone.now())
    return w, project, item


def test_an_owner_asks_what_if_and_releases_burned_seats(browser, live_server, scenario):  # noqa: F811
    w, project, item = scenario
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:project", args=[project.pk]))
    page.get_by_role("link", name="What if, and the right quantity").first.click()
    page.get_by_label("Quantity", exact=True).fill("8")
    page.get_by_role("button", name="Replay").click()
    page.wait_for_selector("#what-if-result")
    assert page.locator("#refused").inner_text() == "30"  # kiosk-9 is the 9th device, 30 tries
    assert int(page.locator("#actual-refused").inner_text()) >= 2
    assert page.locator("#rq-none").inner_text() == "9"
    shot(page, "insight-what-if")

    page.goto(live_server.url + reverse("portal:insight", args=[project.pk]))
    assert "far_networks" in page.content() and "many_networks" in page.content()
    assert page.locator("#seats-burned").inner_text() == "3"
    shot(page, "insight-project")

    page.get_by_role("link", name="See the groups and release them").click()
    page.get_by_role("button", name="Release the 3 older…").click()
    shot(page, "insight-seat-burn-confirm")
    page.get_by_role("button", name="Release 3 older devices").click()
    page.wait_for_selector(".undo")
    assert Device.objects.filter(state=Device.RELEASED).count() == 3
    shot(page, "insight-seat-burn-released")
    page.get_by_role("button", name="Undo the release").click()
    page.wait_for_load_state()
    assert Device.objects.filter(state=Device.RELEASED).count() == 0
    assert page.console_errors == []
    page.context.close()


def test_staff_read_the_upsell_list_and_the_flags(browser, live_server, scenario):  # noqa: F811
    w, project, item = scenario
    page = new_page(browser)
    log_in(page, live_server, w.staff.username)
    page.goto(live_server.url + reverse("portal:staff_dashboard"))
    page.get_by_role("link", name="Upsell and anomaly flags").click()
    assert f"#{item.pk} dbr per_client_device" in page.locator("#upsell").inner_text()
    assert "far_networks" in page.content()
    shot(page, "insight-staff")
    assert page.console_errors == []
    page.context.close()
