"""Portal journeys (SPEC section 10) in a real browser (Debian's Chromium, Playwright, live_server): reading a
refusal explanation, inviting a member through the emailed link and removing them, confirm then
release and undo, a 255-character name at 1366 and 390 px, staff viewing a customer's pages, the
error pages; and axe-core (tests/vendor/axe.min.js) on every portal page with zero violations of
the wcag2a and wcag2aa tags. Screenshots in test-artifacts/screenshots/."""

# ruff: noqa: F811  (the browser fixture comes from tests.test_browser_portal)
from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from licenses.models import Membership
from tests import factories
from tests.factories import world
from tests.test_browser_portal import CHROMIUM, PASSWORD, SCREENSHOTS, browser, expect, log_in, pytestmark, shot  # noqa: F401

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_RESULTS = SCREENSHOTS.parent / "axe-results.json"
LONG_NAME = ("Reception kiosk in the north building, second floor, " * 6)[:255]


@pytest.fixture
def w(transactional_db):
    now = timezone.now()
    w = world(now, devices=5)
    factories.DecisionFactory(
        device=w.device, now=now, allowed=False, rule="seats_exhausted",
        counts={"active": 11, "quantity": 10, "ceiling": 11}, created_at=now - timedelta(minutes=30),
    )  # fmt: skip
    return w


def new_page(browser, *, width: int = 1366, height: int = 900):
    # bypass_csp: axe-core is injected as an inline script, which the portal's policy refuses.
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    return page


def axe(page, name: str) -> list:
    """Run axe-core on the page (wcag2a + wcag2aa); record the result; return the violations."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})); }"
    )
    results = json.loads(AXE_RESULTS.read_text()) if AXE_RESULTS.exists() else {}
    results[name] = {"url": page.url, "violations": result}
    AXE_RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))
    return result


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_it_reads_a_refusal_explanation(browser, live_server, w):
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:project", args=[w.project.pk]))
    panel = page.get_by_role("region", name=re.compile("Refusals in the last 7 days"))
    expect(panel).to_contain_text("1 × All seats taken")
    expect(panel).to_contain_text("11 of 10 seats + 1 grace were taken at")
    shot(page, "project-refusal-panel-owner")
    page.get_by_role("link", name="Every refusal, explained").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Refusals of")
    expect(page.locator(".refusal-group").first).to_contain_text("Now 5 devices hold a seat")
    assert axe(page, "refusals-owner") == []
    shot(page, "refusals-owner")
    page.get_by_role("link", name="the latest device's timeline").click()
    timeline = page.get_by_role("region", name="Why was this device refused?")
    expect(timeline).to_contain_text("so this new device got no seat")
    assert axe(page, "device-owner") == []
    shot(page, "device-why-refused-owner")
    assert page.console_errors == []
    page.context.close()


def test_it_invites_a_member_through_the_emailed_link_and_removes_them(browser, live_server, w, settings):
    settings.BASE_URL = live_server.url
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:team", args=[w.org.pk]))
    assert axe(page, "team-owner") == []
    page.get_by_label("Email address").fill("new.person@acme.example")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status").first).to_contain_text("Invitation sent to new.person@acme.example")
    shot(page, "team-invited-owner")
    invite = next(m for m in mail.outbox if m.to == ["new.person@acme.example"])
    link = re.search(r"http\S+/invitations/\S+/", invite.body).group(0)
    assert link.startswith(live_server.url)

    guest = new_page(browser)
    guest.goto(link)
    assert axe(guest, "invitation-accept") == []
    shot(guest, "invitation-accept")
    guest.get_by_label("Username").fill("newbie")
    guest.get_by_label("Password", exact=True).fill("Long-Pass-4567")
    guest.get_by_label("Password again").fill("Long-Pass-4567")
    guest.get_by_role("button", name="Create my account and join").click()
    expect(guest.get_by_role("status").first).to_contain_text("Welcome to Acme Test: you are viewer")
    expect(guest.get_by_role("heading", name=re.compile("Acme Test"))).to_be_visible()
    shot(guest, "home-new-viewer")
    guest.goto(link)  # once only
    expect(guest.get_by_role("heading", level=1)).to_have_text("This invitation link no longer works")
    guest.context.close()

    page.reload()
    page.get_by_role("link", name="Remove newbie").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove newbie?")
    expect(page.locator(".confirm")).to_contain_text("they will no longer see this organization's licenses")
    assert axe(page, "member-remove-confirm") == []
    shot(page, "member-remove-confirm")
    page.get_by_role("button", name="Remove newbie").click()
    expect(page.get_by_role("status").first).to_contain_text("newbie was removed from Acme Test")
    assert not Membership.objects.filter(user__username="newbie").exists()
    page.context.close()


def test_it_confirms_then_releases_and_undoes(browser, live_server, w):
    idle = [
        factories.DeviceFactory(
            item=w.seats, now=w.now, device_name=f"Idle laptop {k}", last_seen_at=w.now - timedelta(days=45)
        )
        for k in range(2)
    ]
    page = new_page(browser)
    log_in(page, live_server, w.owner.username)
    page.goto(live_server.url + reverse("portal:devices", args=[w.project.pk]))
    page.get_by_role("link", name="Release the seat of Front desk 1").click()
    expect(page.locator(".confirm")).to_contain_text("This frees the seat that Front desk 1 holds")
    assert axe(page, "release-confirm") == []
    shot(page, "release-confirm-owner")
    assert Device.objects.get(device_name="Front desk 1").state == Device.ACTIVE  # nothing yet
    page.get_by_role("button", name="Release Front desk 1").click()
    expect(page.get_by_role("status").first).to_contain_text("Released Front desk 1: its seat is free.")
    assert Device.objects.get(device_name="Front desk 1").state == Device.RELEASED

    page.get_by_role("link", name="Release idle devices…").click()
    page.get_by_label("Idle for more than (days)").fill("30")
    page.get_by_role("button", name="Show the devices").click()
    expect(page.locator("main")).to_contain_text("2 devices holding a seat were last seen more than 30 days ago")
    assert axe(page, "release-idle") == []
    shot(page, "release-idle-owner")
    page.get_by_role("button", name="Release 2 idle devices").click()
    expect(page.locator(".undo")).to_contain_text("Released 2 devices")
    shot(page, "release-idle-undo-owner")
    assert all(Device.objects.get(pk=d.pk).state == Device.RELEASED for d in idle)
    # Another owner, in another browser (another context: no shared session), undoes it from
    # the project's page: the release is kept on the server (ReleaseBatch).
    factories.UserFactory(organization=w.org, role="owner", username="co-owner")
    other = new_page(browser)
    log_in(other, live_server, "co-owner")
    other.goto(live_server.url + reverse("portal:project", args=[w.project.pk]))
    expect(other.locator(".undo")).to_contain_text("Released 2 devices at")
    expect(other.locator(".undo")).to_contain_text(f"by {w.owner.username}. Any owner can undo this until")
    assert axe(other, "project-undo-co-owner") == []
    shot(other, "project-undo-co-owner")
    other.get_by_role("button", name="Undo the release").click()
    expect(other.get_by_role("status").first).to_contain_text("Undone: 2 devices hold their seat again.")
    assert all(Device.objects.get(pk=d.pk).state == Device.ACTIVE for d in idle)
    assert other.console_errors == []
    other.context.close()
    # The first owner's page still offers it: undoing again is refused, saying who did it.
    page.get_by_role("button", name="Undo the release").click()
    expect(page.get_by_role("status").first).to_contain_text("Already undone by co-owner.")
    shot(page, "release-idle-undo-refused-owner")
    assert all(Device.objects.get(pk=d.pk).state == Device.ACTIVE for d in idle)
    page.context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_a_255_character_name_never_makes_the_page_scroll_sideways(browser, live_server, w, width):
    device = factories.DeviceFactory(
        item=w.seats,
        now=w.now,
        client_type="web",
        device_name=LONG_NAME,
        origin="https://" + "a" * 60 + ".acme.example",
    )
    lic = factories.LicenseFactory(organization=w.org, license_id="L-" + "X" * 126)
    factories.LicenseItemFactory(per_client_device=True, license=lic, project=w.project, quantity=3)
    page = new_page(browser, width=width, height=844 if width == 390 else 900)
    log_in(page, live_server, w.owner.username)
    suffix = "phone" if width == 390 else "desktop"
    for name, url in [
        ("home", reverse("portal:home")),
        ("devices", reverse("portal:devices", args=[w.project.pk])),
        ("device", reverse("portal:device", args=[device.pk])),
        ("project", reverse("portal:project", args=[w.project.pk])),
        ("statistics", reverse("portal:statistics", args=[w.project.pk])),
        ("release-confirm", reverse("portal:device_release", args=[device.pk])),
    ]:
        page.goto(live_server.url + url)
        assert no_horizontal_scroll(page), (name, width, page.evaluate("document.documentElement.scrollWidth"))
        shot(page, f"long-name-{name}-{suffix}")
    page.goto(live_server.url + reverse("portal:devices", args=[w.project.pk]))
    link = page.get_by_role("link", name=LONG_NAME, exact=True)
    assert link.get_attribute("title") == LONG_NAME  # the full text on hover
    release = page.get_by_role("link", name=f"Release the seat of {LONG_NAME}")
    expect(release).to_be_in_viewport()  # Release stays on screen
    page.context.close()


def test_staff_view_a_customers_pages_read_only(browser, live_server, w):
    page = new_page(browser)
    log_in(page, live_server, w.staff.username)
    page.get_by_role("link", name="Acme Test").first.click()
    banner = page.get_by_role("note")
    expect(banner).to_contain_text("Staff view of Acme Test")
    expect(banner).to_contain_text("read-only")
    assert axe(page, "organization-staff") == []
    shot(page, "organization-staff")
    for name, url in [
        ("project-staff", reverse("portal:project", args=[w.project.pk])),
        ("devices-staff", reverse("portal:devices", args=[w.project.pk])),
        ("refusals-staff", reverse("portal:refusals", args=[w.project.pk])),
        ("team-staff", reverse("portal:team", args=[w.org.pk])),
    ]:
        page.goto(live_server.url + url)
        expect(page.get_by_role("note")).to_contain_text("Staff view of Acme Test")
        assert page.get_by_role("button", name=re.compile("Move item|Send the invitation")).count() == 0
        assert page.get_by_role("link", name=re.compile("^Release the seat")).count() == 0
        shot(page, name)
    # The breadcrumb leads to the customer's own view, not to the staff dashboard.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Acme Test").click()
    assert page.url == live_server.url + reverse("portal:organization", args=[w.org.pk])
    page.context.close()


def test_the_error_pages_have_a_way_back(browser, live_server, w):
    page = new_page(browser)
    log_in(page, live_server, w.outsider.username)
    page.goto(live_server.url + reverse("portal:home"))
    response = page.goto(live_server.url + reverse("portal:project", args=[w.project.pk]))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Nothing here")
    assert axe(page, "error-404") == []
    shot(page, "error-404")
    page.get_by_role("link", name="Your licenses").click()
    assert page.url == live_server.url + reverse("portal:home")
    page.context.close()
    viewer = new_page(browser)
    log_in(viewer, live_server, w.viewer.username)
    response = viewer.goto(live_server.url + reverse("portal:release_idle", args=[w.project.pk]))
    assert response.status == 403
    expect(viewer.get_by_role("heading", level=1)).to_have_text("You cannot do this here")
    assert axe(viewer, "error-403") == []
    shot(viewer, "error-403")
    viewer.context.close()


def test_axe_finds_no_wcag_a_or_aa_violation_on_any_portal_page(browser, live_server, w):
    pages = {
        "owner": [
            ("home", reverse("portal:home")),
            ("organization", reverse("portal:organization", args=[w.org.pk])),
            ("project", reverse("portal:project", args=[w.project.pk])),
            ("devices", reverse("portal:devices", args=[w.project.pk])),
            ("device", reverse("portal:device", args=[w.device.pk])),
            ("statistics", reverse("portal:statistics", args=[w.project.pk])),
            ("concurrency", reverse("portal:concurrency", args=[w.project.pk])),
            ("refusals", reverse("portal:refusals", args=[w.project.pk])),
            ("team", reverse("portal:team", args=[w.org.pk])),
            ("alert-recipients", reverse("portal:alert_recipients", args=[w.org.pk])),
            ("release-confirm", reverse("portal:device_release", args=[w.device.pk])),
            ("release-idle", reverse("portal:release_idle", args=[w.project.pk])),
            ("password-change", reverse("password_change")),
        ],
        "viewer": [("home", reverse("portal:home")), ("devices", reverse("portal:devices", args=[w.project.pk]))],
        "staff": [("staff-dashboard", reverse("portal:staff_dashboard"))],
    }
    found = {}
    for role, urls in pages.items():
        for width in (1366, 390):
            page = new_page(browser, width=width)
            log_in(page, live_server, getattr(w, role).username)
            for name, url in urls:
                page.goto(live_server.url + url)
                label = f"{name}-{role}-{width}"
                violations = axe(page, label)
                if violations:
                    found[label] = violations
                if width == 1366:
                    shot(page, f"axe-{name}-{role}")
            page.context.close()
    anonymous = new_page(browser)
    anonymous.goto(live_server.url + reverse("login"))
    if v := axe(anonymous, "login"):
        found["login"] = v
    anonymous.context.close()
    assert found == {}
