"""An organization's integrations (SPEC sections 10, 13, 14): admin API tokens and webhook
endpoints. An owner creates tokens (shown once) and revokes them, registers endpoints (secret
shown once), rotates a secret, deletes an endpoint, reads its deliveries and redelivers; every
destructive action asks for confirmation first. Members see the lists; staff see them read-only.

The token and webhook models belong to the ``api`` app, which sits beside the portal in the
layers: the portal reaches them through the app registry and calls their service methods
(``ApiToken.create_token``/``revoke``, ``WebhookEndpoint.register``/``change``,
``WebhookDelivery.redeliver``), the same code the admin API runs."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from licenses.audit import record_audit
from licenses.events import EVENT_TYPES
from portal.access import can_change, get_organization_for


def _models():
    return (
        apps.get_model("api", "ApiToken"),
        apps.get_model("api", "WebhookEndpoint"),
        apps.get_model("api", "WebhookDelivery"),
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="to tell tokens apart, e.g. “CRM sync”")
    scope = forms.ChoiceField(choices=[("read", "read"), ("write", "write")], initial="read")
    expires_in_days = forms.IntegerField(required=False, min_value=1, max_value=3650, help_text="empty: never expires")


class EndpointForm(forms.Form):
    url = forms.URLField(max_length=2000, assume_scheme="https", label="URL")
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: every event type",
    )


def _page(request, organization, *, token_form=None, endpoint_form=None, status=200) -> HttpResponse:
    ApiToken, WebhookEndpoint, _ = _models()
    context = {
        "organization": organization,
        "tokens": ApiToken.objects.filter(organization=organization).order_by("-created_at", "-id"),
        "endpoints": WebhookEndpoint.objects.filter(organization=organization).order_by("-created_at", "-id"),
        "token_form": token_form or TokenForm(),
        "endpoint_form": endpoint_form or EndpointForm(),
        "can_change": can_change(request, organization.pk),
        "api_base": request.build_absolute_uri("/api/admin/v1/"),
    }
    return render(request, "portal/integrations.html", context, status=status)


@login_required
def integrations(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id)
    return _page(request, organization)


def _secret_page(request, organization, *, what: str, secret: str, about) -> HttpResponse:
    """The one page that ever shows a token or a secret: not stored, not in a message."""
    response = render(
        request,
        "portal/integrations_secret.html",
        {"organization": organization, "what": what, "secret": secret, "about": about},
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def token_create(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, organization, token_form=form, status=400)
    ApiToken, _, _ = _models()
    now = timezone.now()
    days = form.cleaned_data["expires_in_days"]
    token, secret = ApiToken.create_token(
        scope=form.cleaned_data["scope"],
        organization=organization,
        name=form.cleaned_data["name"],
        now=now,
        expires_at=now + timedelta(days=days) if days else None,
        created_by=request.user,
    )
    record_audit(
        actor=request.user,
        action="api_token.create",
        obj=token,
        before=None,
        after={"name": token.name, "scope": token.scope, "organization": organization.pk},
        organization=organization,
    )
    return _secret_page(request, organization, what="token", secret=secret, about=token)


def _token(organization, pk: int):
    ApiToken, _, _ = _models()
    token = ApiToken.objects.filter(organization=organization, pk=pk).first()
    if token is None:
        raise Http404("No such token")
    return token


@require_http_methods(["GET", "POST"])
@login_required
def token_revoke(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    token = _token(organization, pk)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        token.revoke(now=timezone.now(), actor=request.user)
        messages.success(request, f"The token {token.prefix}… ({token.name}) is revoked: it answers 401 from now on.")
        return redirect("portal:integrations", org_id=organization.pk)
    context = {
        "organization": organization,
        "title": f"Revoke the token {token.name}?",
        "body": f"The token {token.prefix}… ({token.name}, {token.scope}) will stop working at once: every request "
        "with it answers 401. This cannot be undone; create a new token if you need one.",
        "button": "Revoke the token",
    }
    return render(request, "portal/integrations_confirm.html", context)


@require_POST
@login_required
def endpoint_create(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    form = EndpointForm(request.POST)
    _, WebhookEndpoint, _ = _models()
    if form.is_valid():
        try:
            endpoint, secret = WebhookEndpoint.register(
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"] or None,
                organization=organization,
                created_by_name=request.user.get_username(),
                now=timezone.now(),
            )
        except ValueError as e:
            for field, reason in getattr(e, "fields", {"url": str(e)}).items():
                form.add_error(field if field in form.fields else None, f"The {field} {reason}.")
        else:
            record_audit(
                actor=request.user,
                action="webhook.create",
                obj=endpoint,
                before=None,
                after=endpoint.as_data(),
                organization=organization,
            )
            return _secret_page(request, organization, what="signing secret", secret=secret, about=endpoint)
    return _page(request, organization, endpoint_form=form, status=400)


def _endpoint(organization, pk: int):
    _, WebhookEndpoint, _ = _models()
    endpoint = WebhookEndpoint.objects.filter(organization=organization, pk=pk).first()
    if endpoint is None:
        raise Http404("No such endpoint")
    return endpoint


@login_required
def endpoint_detail(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id)
    endpoint = _endpoint(organization, pk)
    deliveries = endpoint.deliveries.select_related("event").prefetch_related("attempt_log").order_by("-id")[:100]
    context = {
        "organization": organization,
        "endpoint": endpoint,
        "deliveries": deliveries,
        "events": endpoint.events or list(EVENT_TYPES),
        "can_change": can_change(request, organization.pk),
    }
    return render(request, "portal/integrations_endpoint.html", context)


@require_POST
@login_required
def delivery_redeliver(request: HttpRequest, org_id: str, pk: int, delivery_pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    endpoint = _endpoint(organization, pk)
    delivery = endpoint.deliveries.select_related("event").filter(pk=delivery_pk).first()
    if delivery is None:
        raise Http404("No such delivery")
    delivery.redeliver(now=timezone.now())
    record_audit(
        actor=request.user,
        action="webhook.redeliver",
        obj=endpoint,
        before=None,
        after={"delivery": str(delivery.pk), "event": delivery.event.event_id},
        organization=organization,
    )
    messages.success(request, f"{delivery.event.type} ({delivery.event.event_id}) will be delivered again now.")
    return redirect("portal:webhook", org_id=organization.pk, pk=endpoint.pk)


@require_http_methods(["GET", "POST"])
@login_required
def endpoint_rotate(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    endpoint = _endpoint(organization, pk)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        secret = endpoint.change(now=timezone.now(), rotate_secret=True)
        record_audit(
            actor=request.user,
            action="webhook.rotate_secret",
            obj=endpoint,
            before=None,
            after={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()},
            organization=organization,
        )
        return _secret_page(request, organization, what="signing secret", secret=secret, about=endpoint)
    context = {
        "organization": organization,
        "title": f"Rotate the signing secret of {endpoint.url}?",
        "body": "A new secret is made and shown once. For 24 hours every delivery is signed with both the new "
        "and the old secret, so your receiver can switch over; after that only the new one signs.",
        "button": "Rotate the secret",
    }
    return render(request, "portal/integrations_confirm.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def endpoint_delete(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    endpoint = _endpoint(organization, pk)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        data = endpoint.as_data()
        record_audit(
            actor=request.user,
            action="webhook.delete",
            obj=endpoint,
            before=data,
            after=None,
            organization=organization,
            object_id=str(endpoint.pk),
        )
        endpoint.delete()
        messages.success(request, f"The endpoint {data['url']} is deleted: it gets no more events.")
        return redirect("portal:integrations", org_id=organization.pk)
    context = {
        "organization": organization,
        "title": f"Delete the endpoint {endpoint.url}?",
        "body": f"{endpoint.url} will get no more events, and its delivery log ({endpoint.deliveries.count()} "
        "deliveries) is deleted with it. This cannot be undone.",
        "button": "Delete the endpoint",
    }
    return render(request, "portal/integrations_confirm.html", context)
