"""Tenant isolation: an owner / viewer / outsider / staff / anonymous matrix over every portal URL.

Outsiders (members of another organization) get 404 on every object of this one; viewers see but
every change is refused (403) and leaves the data as it was; staff see every organization
read-only; anonymous users are sent to the login page; the staff dashboard refuses customers."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import reverse

from devices.models import Device
from licenses.members import invite_member
from licenses.models import AlertRecipient, Invitation, LicenseItem, Membership
from tests import factories
from tests.factories import MODEL_BACKEND, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(factories.NOW, tick=False):
        yield world(factories.NOW)


def read_urls(w) -> list[str]:
    """Every portal page that shows one organization's data."""
    p = w.project.pk
    return [
        reverse("portal:project", args=[p]),
        reverse("portal:alert_recipients", args=[w.org.pk]),
        reverse("portal:devices", args=[p]),
        reverse("portal:devices", args=[p]) + "?state=active&q=Front",
        reverse("portal:device", args=[w.device.pk]),
        reverse("portal:statistics", args=[p]),
        reverse("portal:concurrency", args=[p]),
        reverse("portal:export", args=[p, "usage"]),
        reverse("portal:export", args=[p, "concurrency"]),
        reverse("portal:export", args=[p, "devices"]),
        reverse("portal:organization", args=[w.org.pk]),
        reverse("portal:refusals", args=[p]),
        reverse("portal:refusals", args=[p]) + "?days=30&rule=seats_exhausted",
        reverse("portal:team", args=[w.org.pk]),
    ]


def owner_pages(w) -> list[str]:
    """Pages that lead to a change (confirmations): owners only; viewers and staff 403."""
    viewer = Membership.objects.get(user=w.viewer, organization=w.org)
    return [
        reverse("portal:device_release", args=[w.device.pk]),
        reverse("portal:release_idle", args=[w.project.pk]) + "?days=1",
        reverse("portal:member_remove", args=[w.org.pk, viewer.pk]),
    ]


def change_requests(w) -> list[tuple[str, dict]]:
    """Every POST that changes something, with a valid body."""
    recipient = AlertRecipient.objects.create(organization=w.org, email="ops@acme.example")
    ids = [str(i.pk) for i in w.project.items_in_order()]
    viewer = Membership.objects.get(user=w.viewer, organization=w.org)
    invitation, _ = invite_member(
        organization=w.org, email="later@acme.example", role="viewer", actor=w.owner, now=w.now
    )
    return [
        (reverse("portal:project_reorder", args=[w.project.pk]), {"item_ids": list(reversed(ids))}),
        (reverse("portal:device_release", args=[w.device.pk]), {"confirm": "yes"}),
        (reverse("portal:alert_recipients", args=[w.org.pk]), {"email": "new@acme.example"}),
        (reverse("portal:alert_recipient_delete", args=[w.org.pk, recipient.pk]), {}),
        (reverse("portal:team", args=[w.org.pk]), {"email": "new-member@acme.example", "role": "viewer"}),
        (reverse("portal:member_role", args=[w.org.pk, viewer.pk]), {"role": "owner"}),
        (reverse("portal:invitation_cancel", args=[w.org.pk, invitation.pk]), {}),
        (reverse("portal:release_idle", args=[w.project.pk]), {"days": "1", "confirm": "yes"}),
        (reverse("portal:release_idle_undo", args=[w.project.pk]), {"batch": "1"}),
        (reverse("portal:member_remove", args=[w.org.pk, viewer.pk]), {"confirm": "yes"}),
    ]


def snapshot(w):
    return (
        list(LicenseItem.objects.order_by("pk").values_list("pk", "position")),
        list(Device.objects.order_by("pk").values_list("pk", "state")),
        sorted(AlertRecipient.objects.values_list("email", flat=True)),
        sorted(Membership.objects.values_list("user_id", "organization_id", "role")),
        sorted(Invitation.objects.values_list("email", "cancelled_at")),
    )


def test_it_shows_every_page_to_owner_viewer_and_staff(client, w):
    for user in (w.owner, w.viewer, w.staff):
        client.force_login(user, backend=MODEL_BACKEND)
        for url in read_urls(w):
            assert client.get(url).status_code == 200, (user.username, url)


def test_it_answers_404_to_an_outsider_on_every_page(client, w):
    client.force_login(w.outsider, backend=MODEL_BACKEND)
    for url in read_urls(w) + owner_pages(w):
        assert client.get(url).status_code == 404, url


def test_it_shows_confirmations_to_owners_only(client, w):
    for user, status in ((w.owner, 200), (w.viewer, 403), (w.staff, 403)):
        client.force_login(user, backend=MODEL_BACKEND)
        for url in owner_pages(w):
            assert client.get(url).status_code == status, (user.username, url)
    assert Device.objects.get(pk=w.device.pk).state == Device.ACTIVE  # a GET changes nothing


def test_it_sends_anonymous_users_to_the_login_page(client, w):
    urls = [*read_urls(w), *owner_pages(w), reverse("portal:home"), reverse("portal:staff_dashboard")]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    for url, body in change_requests(w):
        response = client.post(url, body)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_it_refuses_every_change_to_a_viewer_and_changes_nothing(client, w):
    requests = change_requests(w)
    before = snapshot(w)
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    for url, body in requests:
        assert client.post(url, body).status_code == 403, url
    assert snapshot(w) == before


def test_it_refuses_every_change_to_staff_who_are_not_owners(client, w):
    requests = change_requests(w)
    before = snapshot(w)
    client.force_login(w.staff, backend=MODEL_BACKEND)
    for url, body in requests:
        assert client.post(url, body).status_code == 403, url
    assert snapshot(w) == before


def test_it_answers_404_to_an_outsider_changing_anything(client, w):
    requests = change_requests(w)
    before = snapshot(w)
    client.force_login(w.outsider, backend=MODEL_BACKEND)
    for url, body in requests:
        assert client.post(url, body).status_code == 404, url
    assert snapshot(w) == before


def test_it_lets_an_owner_make_every_change(client, w):
    requests = change_requests(w)
    client.force_login(w.owner, backend=MODEL_BACKEND)
    for url, body in requests:
        assert client.post(url, body).status_code == 302, url
    w.device.refresh_from_db()
    assert w.device.state == Device.RELEASED
    assert not Membership.objects.filter(user=w.viewer, organization=w.org).exists()
    assert Invitation.objects.filter(email="new-member@acme.example", cancelled_at=None).exists()
    assert sorted(AlertRecipient.objects.filter(organization=w.org).values_list("email", flat=True)) == [
        "new@acme.example"
    ]
    order = [i.pk for i in w.project.items_in_order()]
    assert order == [int(i) for i in requests[0][1]["item_ids"]]


def test_it_hides_change_controls_from_a_viewer(client, w):
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    assert b"Move item" not in client.get(reverse("portal:project", args=[w.project.pk])).content
    assert b"Release the seat" not in client.get(reverse("portal:devices", args=[w.project.pk])).content
    page = client.get(reverse("portal:alert_recipients", args=[w.org.pk])).content
    assert b"Add a recipient" not in page
    page = client.get(reverse("portal:team", args=[w.org.pk])).content
    assert b"Invite a member" not in page and b"Remove" not in page
    client.force_login(w.owner, backend=MODEL_BACKEND)
    assert b"Move item" in client.get(reverse("portal:project", args=[w.project.pk])).content
    assert b"Release the seat" in client.get(reverse("portal:devices", args=[w.project.pk])).content
    assert b"Add a recipient" in client.get(reverse("portal:alert_recipients", args=[w.org.pk])).content
    assert b"Invite a member" in client.get(reverse("portal:team", args=[w.org.pk])).content


def test_it_lists_only_the_users_own_organizations_on_the_home_page(client, w):
    client.force_login(w.outsider, backend=MODEL_BACKEND)
    page = client.get(reverse("portal:home")).content.decode()
    assert "Globex Test" in page and "globex-app" in page
    assert "Acme Test" not in page and "web-app" not in page
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    page = client.get(reverse("portal:home")).content.decode()
    assert "Acme Test" in page and "Globex" not in page


def test_it_refuses_the_staff_dashboard_to_customers(client, w):
    url = reverse("portal:staff_dashboard")
    for user in (w.owner, w.viewer, w.outsider):
        client.force_login(user, backend=MODEL_BACKEND)
        assert client.get(url).status_code == 403
    client.force_login(w.staff, backend=MODEL_BACKEND)
    assert client.get(url).status_code == 200


def test_it_does_not_let_an_owner_release_another_organizations_device_or_reorder_with_foreign_items(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    assert (
        client.post(reverse("portal:device_release", args=[w.other_device.pk]), {"confirm": "yes"}).status_code == 404
    )
    other_owner = Membership.objects.get(user=w.outsider)
    assert (
        client.post(reverse("portal:member_remove", args=[w.org.pk, other_owner.pk]), {"confirm": "yes"}).status_code
        == 404
    )
    assert (
        client.post(
            reverse("portal:member_remove", args=[w.other_org.pk, other_owner.pk]), {"confirm": "yes"}
        ).status_code
        == 404
    )
    assert Membership.objects.filter(pk=other_owner.pk).exists()
    foreign = LicenseItem.objects.filter(project=w.other_project).values_list("pk", flat=True)
    ids = [str(i.pk) for i in w.project.items_in_order()][:-1] + [str(foreign[0])]
    response = client.post(reverse("portal:project_reorder", args=[w.project.pk]), {"item_ids": ids})
    assert response.status_code == 400
    w.other_device.refresh_from_db()
    assert w.other_device.state == Device.ACTIVE
