"""A project's protection and key (SPEC sections 2 and 6): the session password, the validation
fields, and key rotation. Every member sees them; only an owner changes them (403 for others,
404 for outsiders). Writes go through devices.protection.set_protection and
licenses.keys.rotate_key, which audit them."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from devices.protection import ProtectionError, set_protection, split_lines
from licenses.keys import DEFAULT_GRACE_DAYS, MAX_GRACE_DAYS, previous_key_valid, rotate_key
from portal.access import can_change, get_project_for


class ProtectionForm(forms.Form):
    session_password = forms.CharField(
        required=False,
        max_length=255,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current one. Devices must send it as session_password.",
    )
    clear_session_password = forms.BooleanField(required=False, label="Remove the session password")
    allowed_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Web clients: one a line, written like an item's domain (acme.com, *.acme.com).",
    )
    allowed_app_ids = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Mobile clients: exact app ids, one a line."
    )
    allowed_process_names = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Desktop, embedded and server clients: exact process names, one a line (any case on Windows).",
    )


class RotateForm(forms.Form):
    grace_days = forms.IntegerField(
        min_value=0,
        max_value=MAX_GRACE_DAYS,
        initial=DEFAULT_GRACE_DAYS,
        help_text="How long the current key keeps working. 0 for a leaked key: it stops at once.",
    )


def _context(request, project, form, rotate_form):
    now = timezone.now()
    return {
        "project": project,
        "form": form,
        "rotate_form": rotate_form,
        "can_change": can_change(request, project.organization_id),
        "has_password": bool(project.session_password_digest),
        "old_key_valid": previous_key_valid(project, now),
        "now": now,
    }


@require_http_methods(["GET", "POST"])
@login_required
def protection(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk, change=request.method == "POST")
    initial = {
        "allowed_domains": "\n".join(project.allowed_domains),
        "allowed_app_ids": "\n".join(project.allowed_app_ids),
        "allowed_process_names": "\n".join(project.allowed_process_names),
    }
    form = ProtectionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            set_protection(
                project,
                actor=request.user,
                now=timezone.now(),
                session_password=data["session_password"] or None,
                clear_session_password=data["clear_session_password"],
                allowed_domains=split_lines(data["allowed_domains"]),
                allowed_app_ids=split_lines(data["allowed_app_ids"]),
                allowed_process_names=split_lines(data["allowed_process_names"]),
            )
        except ProtectionError as exc:
            for field, reason in exc.errors.items():
                form.add_error(field if field in form.fields else None, reason)
        else:
            messages.success(request, "Protection saved.")
            return redirect("portal:protection", pk=project.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/protection.html", _context(request, project, form, RotateForm()), status=status)


@require_POST
@login_required
def rotate(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk, change=True)
    form = RotateForm(request.POST)
    if not form.is_valid():
        context = _context(request, project, ProtectionForm(), form)
        return render(request, "portal/protection.html", context, status=400)
    now = timezone.now()
    rotate_key(project, grace_days=form.cleaned_data["grace_days"], actor=request.user, now=now)
    messages.success(request, "A new key is in place. Give it to your devices before the old one stops.")
    return redirect("portal:protection", pk=project.pk)
