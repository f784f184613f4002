"""The project admin's protection fields and key rotation (SPEC sections 2 and 6): staff set the
session password and validation fields through ``licenses.protection.set_protection`` and rotate
keys through ``licenses.keys.rotate_key``; both audit."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from ..keys import DEFAULT_GRACE_DAYS, key_hint, rotate_key
from ..models import Project
from ..protection import ProtectionError, clean_domains, set_protection, split_lines

PROTECTION_FIELDS = ["session_password", "clear_session_password", "domains", "app_ids", "process_names"]


class ProjectProtectionForm(forms.ModelForm):
    session_password = forms.CharField(
        required=False,
        max_length=255,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Set a new session password (empty: keep the current one). It cannot be read back.",
    )
    clear_session_password = forms.BooleanField(required=False, label="Remove the session password")
    domains = forms.CharField(
        required=False,
        label="Allowed domains (web)",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One a line, like an item's domain (acme.com, *.acme.com). Empty: not restricted.",
    )
    app_ids = forms.CharField(
        required=False, label="Allowed app ids (mobile)", widget=forms.Textarea(attrs={"rows": 3})
    )
    process_names = forms.CharField(
        required=False,
        label="Allowed process names (desktop, embedded, server)",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Exact; any case when the device's platform is Windows.",
    )

    class Meta:
        model = Project
        fields = ["organization", "name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["domains"].initial = "\n".join(self.instance.allowed_domains)
            self.fields["app_ids"].initial = "\n".join(self.instance.allowed_app_ids)
            self.fields["process_names"].initial = "\n".join(self.instance.allowed_process_names)

    def clean_domains(self):
        errors: dict[str, str] = {}
        domains = clean_domains(split_lines(self.cleaned_data["domains"]), errors)
        if errors:
            raise forms.ValidationError(next(iter(errors.values())))
        return domains


class ProtectionAdminMixin(admin.ModelAdmin):
    """For ``ProjectAdmin``: the protection fields (saved and audited by ``set_protection``) and
    the rotation actions."""

    form = ProjectProtectionForm
    actions = ["rotate_key_with_grace", "rotate_leaked_key"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        data = form.cleaned_data
        try:
            set_protection(
                obj,
                actor=request.user,
                now=timezone.now(),
                session_password=data.get("session_password") or None,
                clear_session_password=bool(data.get("clear_session_password")),
                allowed_domains=data.get("domains", []),
                allowed_app_ids=split_lines(data.get("app_ids", "")),
                allowed_process_names=split_lines(data.get("process_names", "")),
            )
        except ProtectionError as exc:
            messages.error(request, f"Protection not saved: {exc}")

    @admin.display(description="previous key")
    def previous_key(self, obj):
        if not obj.previous_license_key:
            return "-"
        return f"{key_hint(obj.previous_license_key)} works until {obj.previous_key_expires_at:%Y-%m-%d %H:%M} UTC"

    @admin.display(description="session password")
    def session_password_state(self, obj):
        return "set" if obj.session_password_digest else "none"

    def _rotate(self, request, queryset, grace_days: int):
        now = timezone.now()
        for project in queryset:
            rotate_key(project, grace_days=grace_days, actor=request.user, now=now)
        self.message_user(request, f"Rotated {len(queryset)} key(s); the old keys work for {grace_days} day(s).")

    @admin.action(description=f"Rotate the key (the old one works {DEFAULT_GRACE_DAYS} more days)")
    def rotate_key_with_grace(self, request, queryset):
        self._rotate(request, queryset, DEFAULT_GRACE_DAYS)

    @admin.action(description="Rotate a leaked key (the old one stops now)")
    def rotate_leaked_key(self, request, queryset):
        self._rotate(request, queryset, 0)
