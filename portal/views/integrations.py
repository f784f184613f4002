"""An organization's integrations (SPEC sections 10, 13, 14): admin API tokens and webhook
endpoints. An owner creates tokens (shown once) and revokes them, registers endpoints (secret
shown once), rotates a secret, deletes an endpoint, reads its deliveries and redelivers; every
destructive action asks for confirmation first. Members see the lists; staff see them read-only.

Tokens and endpoints are ``licenses`` models (an organization's configuration); endpoints are
saved and deliveries redelivered by ``usage.webhooks.endpoints``, the same code the admin and
the admin API run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from licenses.audit import record_audit
from licenses.events import EVENT_TYPES
from licenses.models import ApiToken, Organization, WebhookEndpoint
from portal.access import can_change, get_organization_for
from usage.webhooks.endpoints import WebhookError, create_endpoint, endpoint_data, redeliver, update_endpoint


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


def _one(objects: models.QuerySet, what: str, **lookup: Any) -> Any:
    """The one object of this organization (``lookup`` names it), or 404 for anything else."""
    found = objects.filter(**lookup).first()
    if found is None:
        raise Http404(f"No such {what}")
    return found


def _audit(request, organization: Organization, action: str, obj, *, before=None, after=None, **kw) -> None:
    record_audit(
        actor=request.user, action=action, obj=obj, before=before, after=after, organization=organization, **kw
    )


def _confirmed(request) -> bool:
    """A destructive action runs only on the confirmation page's POST."""
    return request.method == "POST" and request.POST.get("confirm") == "yes"


def _confirm_page(request, organization: Organization, *, title: str, body: str, button: str) -> HttpResponse:
    context = {"organization": organization, "title": title, "body": body, "button": button}
    return render(request, "portal/integrations_confirm.html", context)


def _secret_page(request, organization, *, what: str, secret: str, about) -> HttpResponse:
    """The one page that ever shows a token or a secret: not stored, not in a message."""
    response = render(
        request,
        "portal/integrations_secret.html",
        {"organization": organization, "what": what, "secret": secret, "about": about},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
def integrations(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id)
    return _page(request, organization)


@require_POST
@login_required
def token_create(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, organization, token_form=form, status=400)
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
    after = {"name": token.name, "scope": token.scope, "organization": organization.pk}
    _audit(request, organization, "api_token.create", token, after=after)
    return _secret_page(request, organization, what="token", secret=secret, about=token)


@require_http_methods(["GET", "POST"])
@login_required
def token_revoke(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    token = _one(ApiToken.objects.all(), "token", organization=organization, pk=pk)
    if not _confirmed(request):
        return _confirm_page(
            request,
            organization,
            title=f"Revoke the token {token.name}?",
            body=f"The token {token.prefix}… ({token.name}, {token.scope}) will stop working at once: every request "
            "with it answers 401. This cannot be undone; create a new token if you need one.",
            button="Revoke the token",
        )
    token.revoke(now=timezone.now(), actor=request.user)
    messages.success(request, f"The token {token.prefix}… ({token.name}) is revoked: it answers 401 from now on.")
    return redirect("portal:integrations", org_id=organization.pk)


@require_POST
@login_required
def endpoint_create(request: HttpRequest, org_id: str) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = create_endpoint(
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"] or None,
                organization=organization,
                created_by_name=request.user.get_username(),
                now=timezone.now(),
            )
        except WebhookError as e:
            for field, reason in e.fields.items():
                form.add_error(field if field in form.fields else None, f"The {field} {reason}.")
        else:
            _audit(request, organization, "webhook.create", endpoint, after=endpoint_data(endpoint))
            return _secret_page(request, organization, what="signing secret", secret=secret, about=endpoint)
    return _page(request, organization, endpoint_form=form, status=400)


def _endpoint(organization: Organization, pk: int) -> WebhookEndpoint:
    return _one(WebhookEndpoint.objects.all(), "endpoint", organization=organization, pk=pk)


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
    delivery = _one(endpoint.deliveries.select_related("event"), "delivery", pk=delivery_pk)
    redeliver(delivery, now=timezone.now())
    after = {"delivery": str(delivery.pk), "event": delivery.event.event_id}
    _audit(request, organization, "webhook.redeliver", endpoint, after=after)
    messages.success(request, f"{delivery.event.type} ({delivery.event.event_id}) will be delivered again now.")
    return redirect("portal:webhook", org_id=organization.pk, pk=endpoint.pk)


@require_http_methods(["GET", "POST"])
@login_required
def endpoint_rotate(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    endpoint = _endpoint(organization, pk)
    if not _confirmed(request):
        return _confirm_page(
            request,
            organization,
            title=f"Rotate the signing secret of {endpoint.url}?",
            body="A new secret is made and shown once. For 24 hours every delivery is signed with both the new "
            "and the old secret, so your receiver can switch over; after that only the new one signs.",
            button="Rotate the secret",
        )
    secret = update_endpoint(endpoint, now=timezone.now(), rotate_secret=True)
    assert secret is not None and endpoint.previous_secret_expires_at is not None
    after = {"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()}
    _audit(request, organization, "webhook.rotate_secret", endpoint, after=after)
    return _secret_page(request, organization, what="signing secret", secret=secret, about=endpoint)


@require_http_methods(["GET", "POST"])
@login_required
def endpoint_delete(request: HttpRequest, org_id: str, pk: int) -> HttpResponse:
    organization = get_organization_for(request, org_id, change=True)
    endpoint = _endpoint(organization, pk)
    if not _confirmed(request):
        return _confirm_page(
            request,
            organization,
            title=f"Delete the endpoint {endpoint.url}?",
            body=f"{endpoint.url} will get no more events, and its delivery log ({endpoint.deliveries.count()} "
            "deliveries) is deleted with it. This cannot be undone.",
            button="Delete the endpoint",
        )
    data = endpoint_data(endpoint)
    _audit(request, organization, "webhook.delete", endpoint, before=data, object_id=str(endpoint.pk))
    endpoint.delete()
    messages.success(request, f"The endpoint {data['url']} is deleted: it gets no more events.")
    return redirect("portal:integrations", org_id=organization.pk)
