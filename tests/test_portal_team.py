"""The team (SPEC section 10): an owner invites by email with a one-time link that expires; the
invitee sets a password or joins with an existing account; owners set roles and remove members
after a confirmation; the last owner can be neither removed nor demoted; every change is
audited and emailed to the owners."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.urls import reverse

from licenses.members import TeamError, invite_member, remove_member, set_role
from licenses.models import AuditLog, Invitation, Membership
from tests import factories
from tests.factories import MODEL_BACKEND, NOW, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def link_in(message) -> str:
    return re.search(r"https?://\S+/invitations/\S+/", message.body).group(0)


def test_it_invites_by_email_and_the_invitee_sets_a_password(client, w, settings):
    settings.BASE_URL = "https://dls.example.com"
    client.force_login(w.owner, backend=MODEL_BACKEND)
    with time_machine.travel(NOW, tick=False):
        response = client.post(
            reverse("portal:team", args=[w.org.pk]), {"email": "New.Person@Acme.example", "role": "viewer"}
        )
    assert response.status_code == 302
    invite = next(m for m in mail.outbox if m.to == ["new.person@acme.example"])
    link = link_in(invite)
    assert link.startswith("https://dls.example.com/invitations/")  # the configured base URL
    token = link.rstrip("/").rsplit("/", 1)[1]
    stored = Invitation.objects.get(email="new.person@acme.example")
    assert token not in stored.token_hash  # only the hash is stored
    assert any(m.to == ["owner@acme.example"] and "invited" in m.subject for m in mail.outbox)
    client.logout()
    path = link.removeprefix("https://dls.example.com")
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        page = client.get(path)
        assert page.status_code == 200 and b"Create my account and join" in page.content
        response = client.post(
            path, {"username": "newbie", "password1": "Long-Pass-4567", "password2": "Long-Pass-4567"}
        )
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    membership = Membership.objects.get(user__username="newbie", organization=w.org)
    assert membership.role == "viewer" and membership.user.email == "new.person@acme.example"
    assert membership.user.check_password("Long-Pass-4567")
    assert client.get(reverse("portal:project", args=[w.project.pk])).status_code == 200  # logged in
    # The link works once.
    client.logout()
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert client.get(path).status_code == 410
    actions = list(AuditLog.objects.filter(organization=w.org).values_list("action", flat=True))
    assert "member.invite" in actions and "member.join" in actions
    assert any("joined" in m.subject for m in mail.outbox)


def test_an_invitation_link_expires_and_a_cancelled_one_stops_working(client, w):
    with time_machine.travel(NOW, tick=False):
        _, token = invite_member(organization=w.org, email="a@acme.example", role="owner", actor=w.owner, now=NOW)
        _, token2 = invite_member(organization=w.org, email="b@acme.example", role="viewer", actor=w.owner, now=NOW)
    path = reverse("portal:invitation_accept", args=[token])
    with time_machine.travel(NOW + timedelta(days=7), tick=False):
        assert client.get(path).status_code == 410
    with time_machine.travel(NOW + timedelta(days=6, hours=23), tick=False):
        assert client.get(path).status_code == 200
        client.force_login(w.owner, backend=MODEL_BACKEND)
        invitation = Invitation.objects.get(email="b@acme.example")
        client.post(reverse("portal:invitation_cancel", args=[w.org.pk, invitation.pk]))
        client.logout()
        assert client.get(reverse("portal:invitation_accept", args=[token2])).status_code == 410
        assert client.get(reverse("portal:invitation_accept", args=["not-a-token"])).status_code == 410


def test_an_existing_user_joins_with_the_link(client, w):
    with time_machine.travel(NOW, tick=False):
        _, token = invite_member(organization=w.org, email="it@globex.example", role="viewer", actor=w.owner, now=NOW)
        client.force_login(w.outsider, backend=MODEL_BACKEND)
        path = reverse("portal:invitation_accept", args=[token])
        assert b"join with this account" in client.get(path).content
        assert client.post(path).status_code == 302
    assert Membership.objects.get(user=w.outsider, organization=w.org).role == "viewer"
    assert Membership.objects.get(user=w.outsider, organization=w.other_org).role == "owner"  # kept


def test_the_last_owner_can_be_neither_removed_nor_demoted(client, w):
    owner = Membership.objects.get(user=w.owner, organization=w.org)
    with pytest.raises(TeamError, match="last owner"):
        remove_member(membership=owner, actor=w.owner, now=NOW)
    with pytest.raises(TeamError, match="last owner"):
        set_role(membership=owner, role="viewer", actor=w.owner, now=NOW)
    client.force_login(w.owner, backend=MODEL_BACKEND)
    page = client.get(reverse("portal:member_remove", args=[w.org.pk, owner.pk])).content.decode()
    assert "is the last owner" in page and 'name="confirm"' not in page
    client.post(reverse("portal:member_remove", args=[w.org.pk, owner.pk]), {"confirm": "yes"})
    client.post(reverse("portal:member_role", args=[w.org.pk, owner.pk]), {"role": "viewer"})
    assert Membership.objects.get(pk=owner.pk).role == "owner"
    # With a second owner, the first may step down.
    viewer = Membership.objects.get(user=w.viewer, organization=w.org)
    client.post(reverse("portal:member_role", args=[w.org.pk, viewer.pk]), {"role": "owner"})
    client.post(reverse("portal:member_role", args=[w.org.pk, owner.pk]), {"role": "viewer"})
    assert Membership.objects.get(pk=owner.pk).role == "viewer"
    roles = list(AuditLog.objects.filter(action="member.role").values_list("before", "after"))
    assert ({"user": w.owner.username, "role": "owner"}, {"user": w.owner.username, "role": "viewer"}) in roles


def test_removing_a_member_asks_first_then_audits_and_emails_the_owners(client, w):
    viewer = Membership.objects.get(user=w.viewer, organization=w.org)
    client.force_login(w.owner, backend=MODEL_BACKEND)
    url = reverse("portal:member_remove", args=[w.org.pk, viewer.pk])
    page = re.sub(r"<[^>]+>", "", client.get(url).content.decode())
    assert "This will remove" in page and "will no longer see this organization" in page
    assert client.post(url).status_code == 200  # no confirm: nothing removed
    assert Membership.objects.filter(pk=viewer.pk).exists()
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=viewer.pk).exists()
    entry = AuditLog.objects.get(action="member.remove")
    assert entry.before == {"user": w.viewer.username, "role": "viewer"} and entry.actor == w.owner
    assert any(m.to == ["owner@acme.example"] and "removed" in m.subject for m in mail.outbox)


def test_inviting_a_member_twice_or_an_existing_member_is_refused_in_words(client, w):
    client.force_login(w.owner, backend=MODEL_BACKEND)
    w.viewer.email = "viewer@acme.example"
    w.viewer.save()
    response = client.post(reverse("portal:team", args=[w.org.pk]), {"email": "viewer@acme.example", "role": "owner"})
    assert response.status_code == 400 and b"is already a member of Acme Test" in response.content
    with time_machine.travel(NOW, tick=False):
        invite_member(organization=w.org, email="x@acme.example", role="viewer", actor=w.owner, now=NOW)
        invite_member(organization=w.org, email="x@acme.example", role="owner", actor=w.owner, now=NOW)
    live = Invitation.objects.filter(email="x@acme.example", cancelled_at=None)
    assert [i.role for i in live] == ["owner"]  # only the newest link works


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_two_owners_demoting_each_other_at_once_leave_one_owner(postgres_only):
    for _ in range(5):
        org = factories.OrganizationFactory()
        a = factories.UserFactory(organization=org, role="owner")
        b = factories.UserFactory(organization=org, role="owner")
        ma, mb = (Membership.objects.get(user=u, organization=org) for u in (a, b))
        barrier = threading.Barrier(2)
        errors = []

        def demote(membership, actor, barrier=barrier, errors=errors):
            try:
                barrier.wait(timeout=10)
                set_role(membership=membership, role="viewer", actor=actor, now=NOW)
            except TeamError as e:
                errors.append(e)
            finally:
                connection.close()

        threads = [threading.Thread(target=demote, args=(ma, b)), threading.Thread(target=demote, args=(mb, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert Membership.objects.filter(organization=org, role="owner").count() == 1
        assert len(errors) == 1
