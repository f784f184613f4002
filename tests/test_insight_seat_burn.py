"""Seat burn (devices.seat_burn): browsers that cleared their cache and came back under a new UUID
are grouped with the seats the older UUIDs hold; other browsers, other origins and returns after
the gap are not; the portal page releases the older ones in bulk (confirm, then undo)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devices.models import Device, ReleaseBatch
from devices.seat_burn import burn_groups, seats_burned
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, auth_body, move_clock, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen", "no_rate_limits")]


def browser(
    client, project, uuid, *, origin="https://app.acme.com", platform="windows", address="203.0.113.5", **extra
):
    name = extra.pop("device_name", None)
    body = auth_body(
        project, uuid, client_type="web", edition="javascript", origin=origin, platform=platform, sdk_version="10.4"
    )
    if name is not None:
        body["device_name"] = name
    return post(client, "authorize", body, REMOTE_ADDR=address, **extra)


def cleared_caches_history(client):
    """One browser clears its cache three times (four UUIDs, each a day after the last went
    idle); another browser (macos) is stable; a third came back after two weeks (not burn); an
    origin elsewhere is its own client."""
    item = factories.LicenseItemFactory(edition="javascript", quantity=20, period="monthly")
    project = item.project
    for k in range(4):
        move_clock(NOW + timedelta(days=k, hours=1))
        assert browser(client, project, f"win-{k}").status_code == 200
    move_clock(NOW)
    browser(client, project, "mac-0", platform="macos")
    browser(client, project, "linux-0", platform="linux")
    move_clock(NOW + timedelta(days=16))
    browser(client, project, "linux-1", platform="linux")
    browser(client, project, "other-0", origin="https://shop.acme.com")
    return item


def test_it_groups_the_uuids_of_one_browser_and_counts_the_seats_burned(client):
    item = cleared_caches_history(client)
    now = NOW + timedelta(days=17)
    groups = burn_groups(item.project, now=now)
    assert len(groups) == 1
    group = groups[0]
    assert [d.device_uuid for d in group.devices] == ["win-0", "win-1", "win-2", "win-3"]
    assert group.signature["origin"] == "https://app.acme.com" and group.signature["platform"] == "windows"
    assert group.signature["address_family"] == "IPv4"
    assert [d.device_uuid for d in group.burned] == ["win-0", "win-1", "win-2"]
    assert group.seats_held == 4
    assert seats_burned(item.project, now=now) == 3


CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def test_a_matching_user_agent_groups_devices_whose_names_differ(client):
    """The SDK names each installation anew ("Browser 1f3a", ...): the same Chrome that cleared its
    cache twice is one client by its user agent; a Firefox on the same origin and address, named
    like one of them, is another."""
    item = factories.LicenseItemFactory(edition="javascript", quantity=20, period="monthly")
    for k in range(3):
        move_clock(NOW + timedelta(days=k, hours=1))
        chrome = browser(client, item.project, f"chrome-{k}", device_name=f"Browser {k:04x}", HTTP_USER_AGENT=CHROME)
        assert chrome.status_code == 200
    move_clock(NOW + timedelta(days=1, hours=2))
    browser(client, item.project, "firefox-0", device_name="Browser 0001", HTTP_USER_AGENT=FIREFOX)
    assert Device.objects.get(device_uuid="chrome-0").user_agent == CHROME
    groups = burn_groups(item.project, now=NOW + timedelta(days=3))
    assert [[d.device_uuid for d in g.devices] for g in groups] == [["chrome-0", "chrome-1", "chrome-2"]]
    assert groups[0].signature["user_agent"] == CHROME
    assert [d.device_uuid for d in groups[0].burned] == ["chrome-0", "chrome-1"]
    assert seats_burned(item.project, now=NOW + timedelta(days=3)) == 2


def test_without_a_user_agent_on_both_the_device_names_decide(client):
    item = factories.LicenseItemFactory(edition="javascript", quantity=20, period="monthly")
    browser(client, item.project, "a-0", device_name="Front desk", HTTP_USER_AGENT=CHROME)
    move_clock(NOW + timedelta(hours=5))
    browser(client, item.project, "a-1", device_name="Front desk")  # no header
    browser(client, item.project, "b-0", device_name="Back office")
    groups = burn_groups(item.project, now=NOW + timedelta(hours=6))
    assert [[d.device_uuid for d in g.devices] for g in groups] == [["a-0", "a-1"]]


def test_the_user_agent_is_cut_to_255_characters_and_kept_on_reauthorization(client):
    item = factories.LicenseItemFactory(edition="javascript", quantity=20)
    browser(client, item.project, "long", HTTP_USER_AGENT="x" * 300 + "\x00")
    assert Device.objects.get(device_uuid="long").user_agent == "x" * 255
    browser(client, item.project, "long")  # a request without the header keeps the one recorded
    assert Device.objects.get(device_uuid="long").user_agent == "x" * 255
    browser(client, item.project, "long", HTTP_USER_AGENT=FIREFOX)
    assert Device.objects.get(device_uuid="long").user_agent == FIREFOX


def test_another_address_family_is_another_client(client):
    item = factories.LicenseItemFactory(edition="javascript", quantity=20)
    browser(client, item.project, "a")
    move_clock(NOW + timedelta(hours=5))
    browser(client, item.project, "b", address="2001:db8::7")
    assert burn_groups(item.project, now=NOW + timedelta(hours=6)) == []


def test_released_or_expired_old_uuids_burn_nothing(client):
    item = cleared_caches_history(client)
    Device.objects.filter(device_uuid__in=["win-0", "win-1"]).update(state=Device.RELEASED)
    assert seats_burned(item.project, now=NOW + timedelta(days=17)) == 1


def test_the_page_groups_them_and_releases_the_older_ones_with_undo(client, settings):
    item = cleared_caches_history(client)
    move_clock(NOW + timedelta(days=17))
    owner = factories.UserFactory(organization=item.project.organization)
    client.force_login(owner, backend=MODEL_BACKEND)
    url = f"/projects/{item.project.pk}/seat-burn/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "win-0" in html and "win-3" in html and "3 seats burned" in html
    asked = client.post(url, {"group": "0"})
    assert asked.status_code == 200 and "Release 3 older devices" in asked.content.decode()
    assert Device.objects.filter(state=Device.RELEASED).count() == 0
    done = client.post(url, {"group": "0", "confirm": "yes"}, follow=True)
    assert done.status_code == 200
    released = set(Device.objects.filter(state=Device.RELEASED).values_list("device_uuid", flat=True))
    assert released == {"win-0", "win-1", "win-2"}
    assert "Undo" in done.content.decode()
    batch = ReleaseBatch.objects.get(project=item.project, kind=ReleaseBatch.SEAT_BURN).pk  # kept on the server
    client.post(f"/projects/{item.project.pk}/release-idle/undo/", {"batch": batch})
    assert Device.objects.filter(state=Device.RELEASED).count() == 0


def test_viewers_and_outsiders_cannot_release(client):
    item = cleared_caches_history(client)
    url = f"/projects/{item.project.pk}/seat-burn/"
    viewer = factories.UserFactory(organization=item.project.organization, role="viewer")
    client.force_login(viewer, backend=MODEL_BACKEND)
    assert client.get(url).status_code == 200
    assert client.post(url, {"group": "0", "confirm": "yes"}).status_code == 403
    outsider = factories.UserFactory(organization=factories.OrganizationFactory())
    client.force_login(outsider, backend=MODEL_BACKEND)
    assert client.get(url).status_code == 404
    assert Device.objects.filter(state=Device.RELEASED).count() == 0
