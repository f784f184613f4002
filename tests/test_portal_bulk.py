"""Bulk release of idle devices (SPEC section 10, a destructive action that confirms and says
what it will do) with a 10-minute undo; Release offered only on devices that hold a seat."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from devices.models import Decision, Device
from devices.seats import recount
from licenses.models import AuditLog
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode()))


def idle(w, n: int, days: int):
    return [
        factories.DeviceFactory(
            item=w.seats, now=NOW, device_name=f"Idle {days}d #{k}", last_seen_at=NOW - timedelta(days=days)
        )
        for k in range(n)
    ]


def test_it_lists_the_idle_devices_and_the_seats_it_frees_then_releases_them_and_undoes(client, w):
    old = idle(w, 3, 40)
    recent = idle(w, 1, 10)
    client.force_login(w.owner, backend=MODEL_BACKEND)
    url = reverse("portal:release_idle", args=[w.project.pk])
    with time_machine.travel(NOW, tick=False):
        page = text(client.get(url + "?days=30"))
        assert "3 devices holding a seat were last seen more than 30 days ago" in page
        assert f"Item #{w.seats.pk} (per_client_device, 10 seats): 3 seats freed" in page
        assert "Idle 40d #0" in page and "Idle 10d" not in page
        assert (
            Device.objects.filter(pk__in=[d.pk for d in old], state=Device.ACTIVE).count() == 3
        )  # a GET changes nothing
        response = client.post(url, {"days": "30", "confirm": "yes"})
        assert response.status_code == 302
        assert set(Device.objects.filter(state=Device.RELEASED).values_list("pk", flat=True)) == {d.pk for d in old}
        page = text(client.get(response["Location"]))
        assert "Released 3 devices at 2026-11-27 17:24 UTC by" in page
        assert "Any owner can undo this until 2026-11-27 17:34 UTC" in page
        batch = re.search(r'name="batch" value="(\d+)"', client.get(response["Location"]).content.decode()).group(1)
    assert Device.objects.get(pk=recent[0].pk).state == Device.ACTIVE
    with time_machine.travel(NOW + timedelta(minutes=9), tick=False):
        response = client.post(reverse("portal:release_idle_undo", args=[w.project.pk]), {"batch": batch}, follow=True)
    assert "Undone: 3 devices hold their seat again." in text(response)
    assert Device.objects.filter(pk__in=[d.pk for d in old], state=Device.ACTIVE).count() == 3
    assert Decision.objects.filter(rule="release_undone").count() == 3
    assert AuditLog.objects.filter(action="device.release_undo").count() == 3
    assert recount(fix=False) == []  # the seat counters agree with the devices


def test_an_undo_is_refused_after_10_minutes_and_never_overshoots_the_seats(client, w):
    old = idle(w, 2, 40)
    client.force_login(w.owner, backend=MODEL_BACKEND)
    url = reverse("portal:release_idle", args=[w.project.pk])
    with time_machine.travel(NOW, tick=False):
        location = client.post(url, {"days": "30", "confirm": "yes"})["Location"]
        batch = re.search(r'name="batch" value="(\d+)"', client.get(location).content.decode()).group(1)
    with time_machine.travel(NOW + timedelta(minutes=10, seconds=1), tick=False):
        response = client.post(reverse("portal:release_idle_undo", args=[w.project.pk]), {"batch": batch}, follow=True)
    assert "Too late to undo" in text(response)
    assert Device.objects.filter(pk__in=[d.pk for d in old], state=Device.ACTIVE).count() == 0
    assert recount(fix=False) == []


def test_an_undo_never_overshoots_the_seats_taken_since(client, w, no_rate_limits):
    project = factories.ProjectFactory(organization=w.org, name="kiosks")
    item = factories.LicenseItemFactory(
        per_client_device=True,
        quantity=10,
        project=project,
        license__organization=w.org,
        license__starts_at=NOW - timedelta(days=60),
    )
    with time_machine.travel(NOW - timedelta(days=40), tick=False):
        for k in range(11):
            assert factories.authorize(client, project, f"old-{k}").status_code == 200
    client.force_login(w.owner, backend=MODEL_BACKEND)
    with time_machine.travel(NOW, tick=False):
        location = client.post(reverse("portal:release_idle", args=[project.pk]), {"days": "30", "confirm": "yes"})[
            "Location"
        ]
        batch = re.search(r'name="batch" value="(\d+)"', client.get(location).content.decode()).group(1)
        assert Device.objects.holding_seat(NOW).filter(item=item).count() == 0
        for k in range(11):  # new devices take every freed seat (10 + 1 grace)
            assert factories.authorize(client, project, f"new-{k}").status_code == 200
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        response = client.post(reverse("portal:release_idle_undo", args=[project.pk]), {"batch": batch}, follow=True)
    assert "Undone: 0 devices hold their seat again. 11 could not" in text(response)
    assert Device.objects.holding_seat(NOW + timedelta(minutes=5)).filter(item=item).count() == 11
    assert recount(fix=False) == []


def test_release_is_offered_only_on_devices_that_hold_a_seat(client, w):
    scanner = factories.DeviceFactory(item=w.scan, now=NOW, device_name="Scan-only phone")
    client.force_login(w.owner, backend=MODEL_BACKEND)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("portal:devices", args=[w.project.pk])).content.decode()
        assert 'aria-label="Release the seat of Front desk 0"' in page
        assert 'aria-label="Release the seat of Scan-only phone"' not in page
        detail = client.get(reverse("portal:device", args=[scanner.pk])).content.decode()
        assert "Release this seat" not in detail
        confirm = text(client.get(reverse("portal:device_release", args=[scanner.pk])))
        assert "holds no seat" in confirm


def undo_form_batch(client, url: str) -> str:
    return re.search(r'name="batch" value="(\d+)"', client.get(url).content.decode()).group(1)


def test_another_owner_undoes_from_the_project_page_and_it_is_undone_once(client, w):
    """The release is kept on the server (ReleaseBatch): any owner of the organization, in
    another session, sees it on the project's page and undoes it; the first owner's undo is
    then refused, and nothing moves twice."""
    from django.test import Client

    from devices.models import ReleaseBatch

    old = idle(w, 2, 40)
    second_owner = factories.UserFactory(organization=w.org, role="owner", username="second-owner")
    viewer = factories.UserFactory(organization=w.org, role="viewer")
    client.force_login(w.owner, backend=MODEL_BACKEND)
    other = Client()
    other.force_login(second_owner, backend=MODEL_BACKEND)
    project_url = reverse("portal:project", args=[w.project.pk])
    undo_url = reverse("portal:release_idle_undo", args=[w.project.pk])
    with time_machine.travel(NOW, tick=False):
        client.post(reverse("portal:release_idle", args=[w.project.pk]), {"days": "30", "confirm": "yes"})
    batch = ReleaseBatch.objects.get()
    assert (batch.released_by, sorted(batch.device_ids)) == (w.owner, sorted(d.pk for d in old))
    assert batch.undo_until == NOW + timedelta(minutes=10)
    with time_machine.travel(NOW + timedelta(minutes=4), tick=False):
        page = text(other.get(project_url))
        assert f"Released 2 devices at 2026-11-27 17:24 UTC by {w.owner.username}" in page
        assert undo_form_batch(other, project_url) == str(batch.pk)
        viewer_client = Client()
        viewer_client.force_login(viewer, backend=MODEL_BACKEND)
        assert "Undo the release" not in text(viewer_client.get(project_url))  # owners only
        assert viewer_client.post(undo_url, {"batch": batch.pk}).status_code == 403
        response = other.post(undo_url, {"batch": batch.pk}, follow=True)
        assert "Undone: 2 devices hold their seat again." in text(response)
        assert Device.objects.filter(pk__in=[d.pk for d in old], state=Device.ACTIVE).count() == 2
        again = client.post(undo_url, {"batch": batch.pk}, follow=True)
        assert "Already undone by second-owner." in text(again)
        assert "Undo the release" not in text(client.get(project_url))
    batch.refresh_from_db()
    assert (batch.undone_at, batch.undone_by) == (NOW + timedelta(minutes=4), second_owner)
    assert Decision.objects.filter(rule="release_undone").count() == 2
    assert recount(fix=False) == []


def test_an_undo_is_claimed_once_even_from_a_stale_read(w):
    """Two owners undoing at once: the conditional update claims the batch for one of them."""
    from devices.models import ReleaseBatch
    from portal.bulk import record_batch, release_idle, undo_batch

    idle(w, 2, 40)
    with time_machine.travel(NOW, tick=False):
        released = release_idle(w.project, idle_days=30, actor=w.owner, now=NOW)
        record_batch(w.project, kind=ReleaseBatch.IDLE, device_ids=released, actor=w.owner, now=NOW)
    first, second = ReleaseBatch.objects.get(), ReleaseBatch.objects.get()  # both read before either undoes
    assert undo_batch(first, actor=w.owner, now=NOW + timedelta(minutes=1)).restored == 2
    late = undo_batch(second, actor=w.owner, now=NOW + timedelta(minutes=1))
    assert (late.restored, late.refused) == (0, "Already undone.")
    assert Decision.objects.filter(rule="release_undone").count() == 2


def test_an_undo_names_no_other_projects_release(client, w):
    """A batch id of another project (or organization) undoes nothing."""
    from devices.models import ReleaseBatch

    other = factories.ProjectFactory(organization=w.org, name="elsewhere")
    batch = ReleaseBatch.objects.create(
        project=other, released_at=NOW, undo_until=NOW + timedelta(minutes=10), device_ids=[w.device.pk]
    )
    client.force_login(w.owner, backend=MODEL_BACKEND)
    with time_machine.travel(NOW, tick=False):
        for value in (str(batch.pk), "x", "", "²"):
            response = client.post(
                reverse("portal:release_idle_undo", args=[w.project.pk]), {"batch": value}, follow=True
            )
            assert "Nothing to undo: no such release of this project." in text(response)
    assert ReleaseBatch.objects.get().undone_at is None
