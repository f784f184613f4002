"""The team of an organization (SPEC section 10): an owner invites members by email with a
one-time link that expires, sets owner or viewer, removes members; the last owner can be neither
removed nor demoted. Every change is audited (``record_audit``) and emailed to the owners.

Services take ``now``; the portal's views are the entry points. The owner count is checked with
the organization's memberships locked, so two owners removing each other at once cannot leave
the organization without one."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from .models import Invitation, Membership, Organization
from .services import record_audit

INVITATION_DAYS = 7


class TeamError(Exception):
    """A change the team rules refuse; the message says why, in words for the page."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_url(token: str) -> str:
    return f"{settings.BASE_URL}/invitations/{token}/"


def owner_emails(organization: Organization) -> list[str]:
    return sorted(
        e
        for e in Membership.objects.filter(organization=organization, role=Membership.OWNER).values_list(
            "user__email", flat=True
        )
        if e
    )


def _tell_owners(organization: Organization, subject: str, text: str) -> None:
    to = owner_emails(organization)
    if to:
        send_mail(f"[DLS] {organization.name}: {subject}", text, settings.DEFAULT_FROM_EMAIL, to)


def _name(user) -> str:
    return getattr(user, "get_username", lambda: str(user))()


def invite_member(*, organization: Organization, email: str, role: str, actor, now: datetime) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once: only its hash is stored). A pending invitation
    of the same address is cancelled, so only the newest link works."""
    email = email.strip().lower()
    if role not in dict(Membership.ROLES):
        raise TeamError(f"role must be one of {', '.join(dict(Membership.ROLES))}")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise TeamError(f"{email} is already a member of {organization.name}.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Invitation.objects.filter(
            organization=organization, email__iexact=email, accepted_at=None, cancelled_at=None
        ).update(cancelled_at=now)
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=token_hash(token),
            invited_by=actor,
            created_at=now,
            expires_at=now + timedelta(days=INVITATION_DAYS),
        )
        record_audit(
            actor=actor,
            action="member.invite",
            obj=invitation,
            before=None,
            after={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
            organization=organization,
        )
    link = invitation_url(token)
    send_mail(
        f"You are invited to {organization.name} on DLS Admin",
        f"{_name(actor)} invited you to join {organization.name} as {role}.\n\n"
        f"Open this link to accept (it works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n",
        settings.DEFAULT_FROM_EMAIL,
        [email],
    )
    _tell_owners(organization, f"{email} invited", f"{_name(actor)} invited {email} as {role}.\n")
    return invitation, token


def pending_invitation(token: str, *, now: datetime) -> Invitation | None:
    """The invitation of a link if it can still be used: not accepted, cancelled or expired."""
    invitation = Invitation.objects.select_related("organization").filter(token_hash=token_hash(token)).first()
    if invitation is None or invitation.accepted_at or invitation.cancelled_at or now >= invitation.expires_at:
        return None
    return invitation


def accept_invitation(*, token: str, user=None, username: str = "", password: str = "", now: datetime):
    """Join with the link: an existing (logged-in) ``user``, or a new user with ``username`` and
    ``password``. The invitation is claimed by a conditional update, so a link works once."""
    with transaction.atomic():
        invitation = pending_invitation(token, now=now)
        if invitation is None:
            raise TeamError("This invitation link has expired or was already used. Ask an owner for a new one.")
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, cancelled_at=None).update(
            accepted_at=now
        )
        if claimed != 1:
            raise TeamError("This invitation link was already used.")
        if user is None:
            User = get_user_model()
            if User.objects.filter(username__iexact=username).exists():
                raise TeamError(f"The username {username} is taken: choose another.")
            user = User.objects.create_user(username=username, email=invitation.email, password=password)
        membership, created = Membership.objects.get_or_create(
            user=user, organization=invitation.organization, defaults={"role": invitation.role}
        )
        Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
        record_audit(
            actor=user,
            action="member.join",
            obj=membership,
            before=None,
            after={"user": _name(user), "role": membership.role, "invitation": invitation.pk},
            organization=invitation.organization,
        )
    _tell_owners(
        invitation.organization,
        f"{_name(user)} joined",
        f"{_name(user)} ({invitation.email}) accepted the invitation and joined as {membership.role}.\n",
    )
    return membership


def _lock_owners(organization: Organization) -> int:
    """Lock the organization's memberships and count its owners."""
    rows = list(Membership.objects.select_for_update().filter(organization=organization).values_list("role", flat=True))
    return sum(1 for r in rows if r == Membership.OWNER)


def set_role(*, membership: Membership, role: str, actor, now: datetime) -> Membership:
    if role not in dict(Membership.ROLES):
        raise TeamError(f"role must be one of {', '.join(dict(Membership.ROLES))}")
    organization = membership.organization
    with transaction.atomic():
        owners = _lock_owners(organization)
        current = Membership.objects.get(pk=membership.pk)
        if current.role == role:
            return current
        if current.role == Membership.OWNER and owners <= 1:
            raise TeamError(
                f"{_name(current.user)} is the last owner of {organization.name}: make someone else an owner first."
            )
        before = current.role
        current.role = role
        current.save(update_fields=["role"])
        record_audit(
            actor=actor,
            action="member.role",
            obj=current,
            before={"user": _name(current.user), "role": before},
            after={"user": _name(current.user), "role": role},
            organization=organization,
        )
    _tell_owners(
        organization,
        f"{_name(current.user)} is now {role}",
        f"{_name(actor)} changed {_name(current.user)} from {before} to {role}.\n",
    )
    return current


def remove_member(*, membership: Membership, actor, now: datetime) -> None:
    organization = membership.organization
    with transaction.atomic():
        owners = _lock_owners(organization)
        current = Membership.objects.select_related("user").filter(pk=membership.pk).first()
        if current is None:
            return
        if current.role == Membership.OWNER and owners <= 1:
            raise TeamError(f"{_name(current.user)} is the last owner of {organization.name} and cannot be removed.")
        record_audit(
            actor=actor,
            action="member.remove",
            obj=current,
            before={"user": _name(current.user), "role": current.role},
            after=None,
            organization=organization,
            object_id=str(current.pk),
        )
        current.delete()
    _tell_owners(
        organization,
        f"{_name(current.user)} removed",
        f"{_name(actor)} removed {_name(current.user)} ({current.role}).\n",
    )


def cancel_invitation(*, invitation: Invitation, actor, now: datetime) -> None:
    with transaction.atomic():
        if Invitation.objects.filter(pk=invitation.pk, accepted_at=None, cancelled_at=None).update(cancelled_at=now):
            record_audit(
                actor=actor,
                action="member.invite_cancel",
                obj=invitation,
                before={"email": invitation.email, "role": invitation.role},
                after=None,
                organization=invitation.organization,
            )
