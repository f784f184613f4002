"""The team of an organization (SPEC section 10): members and pending invitations; owners invite
by email, set owner or viewer and remove members (after a confirmation); the invitation link.
Writes go through licenses.members, which audits and emails the owners."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import validate_password
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from licenses.members import (
    TeamError,
    accept_invitation,
    cancel_invitation,
    invite_member,
    pending_invitation,
    remove_member,
    set_role,
)
from licenses.models import Invitation, Membership
from portal.access import can_change, get_organization_for
from portal.display import shown

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(
        label="Role",
        choices=Membership.ROLES,
        initial=Membership.VIEWER,
        help_text="Viewers see everything; owners also change things and manage the team.",
    )


@require_http_methods(["GET", "POST"])
@login_required
def team(request, org_id: str):
    organization = get_organization_for(request, org_id, change=request.method == "POST")
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation, _token = invite_member(
                organization=organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
                now=timezone.now(),
            )
        except TeamError as e:
            form.add_error("email", str(e))
        else:
            messages.success(
                request,
                f"Invitation sent to {invitation.email} as {invitation.role}; the link works once, until "
                f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
            )
            return redirect("portal:team", org_id=organization.pk)
    now = timezone.now()
    members = list(
        Membership.objects.filter(organization=organization).select_related("user").order_by("-role", "user__username")
    )
    owners = sum(1 for m in members if m.role == Membership.OWNER)
    for m in members:
        shown(m, last_owner=m.role == Membership.OWNER and owners <= 1)
    invitations = Invitation.objects.filter(
        organization=organization, accepted_at=None, cancelled_at=None, expires_at__gt=now
    ).select_related("invited_by")
    context = {
        "organization": organization,
        "members": members,
        "invitations": invitations,
        "form": form,
        "can_change": can_change(request, organization.pk),
        "roles": Membership.ROLES,
    }
    return render(request, "portal/team.html", context, status=400 if form.errors else 200)


def _membership(request, org_id: str, pk: int) -> Membership:
    organization = get_organization_for(request, org_id, change=True)
    return get_object_or_404(
        Membership.objects.select_related("user", "organization"), pk=pk, organization=organization
    )


@require_POST
@login_required
def member_role(request, org_id: str, pk: int):
    membership = _membership(request, org_id, pk)
    role = request.POST.get("role", "")
    try:
        set_role(membership=membership, role=role, actor=request.user, now=timezone.now())
    except TeamError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"{membership.user.get_username()} is now {role}.")
    return redirect("portal:team", org_id=org_id)


@require_http_methods(["GET", "POST"])
@login_required
def member_remove(request, org_id: str, pk: int):
    """GET: what removing will do, and the button; POST with confirm=yes: remove."""
    membership = _membership(request, org_id, pk)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            remove_member(membership=membership, actor=request.user, now=timezone.now())
        except TeamError as e:
            messages.error(request, str(e))
        else:
            messages.success(
                request, f"{membership.user.get_username()} was removed from {membership.organization.name}."
            )
        return redirect("portal:team", org_id=org_id)
    owners = Membership.objects.filter(organization=membership.organization, role=Membership.OWNER).count()
    context = {
        "organization": membership.organization,
        "membership": membership,
        "last_owner": membership.role == Membership.OWNER and owners <= 1,
        "is_self": membership.user_id == request.user.pk,
    }
    return render(request, "portal/member_remove.html", context)


@require_POST
@login_required
def invitation_cancel(request, org_id: str, pk: int):
    organization = get_organization_for(request, org_id, change=True)
    invitation = get_object_or_404(Invitation, pk=pk, organization=organization)
    cancel_invitation(invitation=invitation, actor=request.user, now=timezone.now())
    messages.success(request, f"The invitation of {invitation.email} was cancelled: its link no longer works.")
    return redirect("portal:team", org_id=org_id)


class JoinForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150)
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            try:
                validate_password(data["password1"])
            except forms.ValidationError as e:
                self.add_error("password1", e)
        return data


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    """The emailed link: a logged-in user joins with one button; anyone else picks a username
    and a password. An expired, used or cancelled link says so (410)."""
    now = timezone.now()
    invitation = pending_invitation(token, now=now)
    if invitation is None:
        return render(request, "portal/invitation_invalid.html", status=410)
    form = JoinForm(request.POST or None, initial={"username": invitation.email.split("@")[0]})
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                membership = accept_invitation(token=token, user=request.user, now=now)
            elif form.is_valid():
                membership = accept_invitation(
                    token=token,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    now=now,
                )
                login(request, membership.user, backend=MODEL_BACKEND)
            else:
                membership = None
        except TeamError as e:
            form.add_error(None, str(e))
            membership = None
        if membership is not None:
            messages.success(request, f"Welcome to {membership.organization.name}: you are {membership.role}.")
            return redirect("portal:home")
    context = {"invitation": invitation, "form": form}
    return render(request, "portal/invitation_accept.html", context, status=400 if form.errors else 200)
