"""Staff admin of admin API tokens and webhooks (SPEC sections 13, 14): staff create tokens
(shown once) and endpoints (secret shown once), revoke tokens, and read the delivery log with a
redeliver action. Registered from ``api.admin`` (Django's admin autodiscovery)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from licenses.audit import record_audit
from licenses.events import EVENT_TYPES
from licenses.models import ApiToken, WebhookEndpoint
from usage.webhooks.endpoints import WebhookError, create_endpoint, endpoint_data, redeliver, update_endpoint
from usage.webhooks.guard import url_problem
from usage.webhooks.models import WebhookAttempt, WebhookDelivery


class ApiTokenForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(required=False, min_value=1, max_value=3650, help_text="empty: never")

    class Meta:
        model = ApiToken
        fields = ["name", "organization", "scope"]
        help_texts = {"organization": "empty: a staff token (every organization, issuing included)"}


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "name",
        "organization",
        "scope",
        "created_by_name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["scope", "revoked_at"]
    search_fields = ["name", "prefix", "organization__id", "organization__name"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "name",
            "organization",
            "scope",
            "prefix",
            "created_by_name",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]

    def save_model(self, request, obj, form, change):
        if change:
            return
        now = timezone.now()
        days = form.cleaned_data.get("expires_in_days")
        token, secret = ApiToken.create_token(
            scope=obj.scope,
            organization=obj.organization,
            name=obj.name,
            now=now,
            expires_at=now + timedelta(days=days) if days else None,
            created_by=request.user,
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        record_audit(
            actor=request.user,
            action="api_token.create",
            obj=token,
            before=None,
            after={"name": token.name, "scope": token.scope, "organization": token.organization_id},
        )
        messages.warning(request, f"The new token (shown only now, copy it): {secret}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        now = timezone.now()
        for token in queryset.filter(revoked_at__isnull=True):
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=now)
            record_audit(
                actor=request.user,
                action="api_token.revoke",
                obj=token,
                before=None,
                after={"revoked_at": now.isoformat()},
                organization=token.organization,
            )
        self.message_user(request, "Revoked.")


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none: every type",
    )
    rotate_secret = forms.BooleanField(required=False, help_text="a new secret; the old one also signs for 24 h")
    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "organization", "enabled"]
        help_texts = {"organization": "empty: every organization's events"}

    def clean_url(self):
        url = self.cleaned_data["url"]
        problem = url_problem(url)
        if problem:
            raise forms.ValidationError(f"The URL {problem}.")
        return url


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "status_code", "latency_ms", "response_excerpt", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "organization", "enabled", "failing_since", "disabled_reason", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "organization__id", "organization__name"]

    def save_model(self, request, obj, form, change):
        now = timezone.now()
        try:
            if not change:
                endpoint, secret = create_endpoint(
                    url=obj.url,
                    events=form.cleaned_data.get("events") or [],
                    organization=obj.organization,
                    created_by_name=request.user.get_username(),
                    now=now,
                )
                if not obj.enabled:
                    update_endpoint(endpoint, now=now, enabled=False)
                obj.pk = endpoint.pk
                obj.refresh_from_db()
                record_audit(
                    actor=request.user,
                    action="webhook.create",
                    obj=endpoint,
                    before=None,
                    after=endpoint_data(endpoint),
                    organization=endpoint.organization,
                )
                messages.warning(request, f"The endpoint's signing secret (shown only now, copy it): {secret}")
                return
            before = endpoint_data(WebhookEndpoint.objects.get(pk=obj.pk))
            obj.events = form.cleaned_data.get("events") or []
            obj.save()
            new_secret = update_endpoint(
                obj, now=now, enabled=obj.enabled, rotate_secret=form.cleaned_data.get("rotate_secret", False)
            )
            record_audit(
                actor=request.user,
                action="webhook.change",
                obj=obj,
                before=before,
                after=endpoint_data(obj),
                organization=obj.organization,
            )
            if new_secret:
                messages.warning(
                    request, f"The new signing secret (shown only now; the old one signs for 24 h): {new_secret}"
                )
        except WebhookError as e:
            messages.error(request, str(e))

    def delete_model(self, request, obj):
        record_audit(
            actor=request.user,
            action="webhook.delete",
            obj=obj,
            before=endpoint_data(obj),
            after=None,
            organization=obj.organization,
            object_id=str(obj.pk),
        )
        super().delete_model(request, obj)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "endpoint",
        "event_type",
        "event_id_text",
        "status",
        "attempts",
        "attempt_at",
        "last_status_code",
        "delivered_at",
    ]
    list_filter = ["status"]
    search_fields = ["event__event_id", "endpoint__url"]
    list_select_related = ["endpoint", "event"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver_selected"]
    readonly_fields = [
        "endpoint",
        "event",
        "status",
        "attempts",
        "attempt_at",
        "lease_until",
        "last_status_code",
        "created_at",
        "delivered_at",
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="webhook-id")
    def event_id_text(self, obj):
        return obj.event.event_id

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver_selected(self, request, queryset):
        now = timezone.now()
        n = 0
        for delivery in queryset:
            redeliver(delivery, now=now)
            n += 1
        record_audit(
            actor=request.user,
            action="webhook.redeliver",
            obj="deliveries",
            before=None,
            after={"deliveries": [d.pk for d in queryset]},
        )
        self.message_user(request, f"{n} deliveries will be attempted again now.")
