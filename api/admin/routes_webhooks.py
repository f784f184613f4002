"""Webhook endpoints and their deliveries (SPEC sections 13 and 14). Staff tokens see every
endpoint; an organization token only its organization's (others are 404)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from api.admin.auth import get_visible, not_found, token_of, visible
from api.admin.common import invalid, write
from api.admin.pagination import page
from api.admin.schemas import ERRORS, WRITE_ERRORS, Page, WebhookCreate, WebhookPatch
from licenses.audit import record_audit
from licenses.models import Organization, WebhookEndpoint
from usage.webhooks.endpoints import (
    WebhookError,
    create_endpoint,
    delivery_data,
    endpoint_data,
    redeliver,
    update_endpoint,
)
from usage.webhooks.models import WebhookDelivery

router = Router(tags=["webhooks"])


def _endpoint(request: HttpRequest, id: str) -> WebhookEndpoint:
    if not (id.isascii() and id.isdigit()) or len(id) > 18:
        raise not_found("webhook")
    return get_visible(WebhookEndpoint.objects.all(), token_of(request), "webhook", pk=int(id))


def _audit(request: HttpRequest, action: str, endpoint: WebhookEndpoint, before, after) -> None:
    token = token_of(request)
    record_audit(
        actor=token.actor_name(),
        action=action,
        obj=endpoint,
        before=before,
        after=after,
        organization=endpoint.organization,
        object_id=str(endpoint.pk),
    )


@router.get("/webhooks", response={200: Page, **ERRORS}, summary="Webhook endpoints")
def list_webhooks(request: HttpRequest, limit: int | None = None, cursor: str | None = None):
    qs = visible(WebhookEndpoint.objects.all(), token_of(request))
    return page(qs, limit=limit, cursor=cursor, render=endpoint_data)


@router.post("/webhooks", response={201: dict, **WRITE_ERRORS}, summary="Register a webhook endpoint")
def post_webhook(request: HttpRequest, payload: WebhookCreate):
    """201 with the endpoint and its ``secret``, shown only in this answer."""
    token = token_of(request)
    now = timezone.now()

    def run():
        organization = token.organization
        if token.is_staff_token and payload.organization is not None:
            organization = Organization.objects.filter(pk=payload.organization).first()
            if organization is None:
                raise invalid({"organization": "no such organization"})
        elif not token.is_staff_token and payload.organization not in (None, token.organization_id):
            raise invalid({"organization": "an organization token registers endpoints of its own organization"})
        try:
            endpoint, secret = create_endpoint(
                url=payload.url,
                events=payload.events,
                organization=organization,
                created_by_name=token.actor_name(),
                now=now,
            )
        except WebhookError as e:
            raise invalid(e.fields) from None
        _audit(request, "webhook.create", endpoint, None, endpoint_data(endpoint))
        return 201, endpoint_data(endpoint, secret=secret)

    return write(request, run, now=now)


@router.get("/webhooks/{id}", response={200: dict, **ERRORS}, summary="A webhook endpoint")
def get_webhook(request: HttpRequest, id: str):
    return endpoint_data(_endpoint(request, id))


@router.patch("/webhooks/{id}", response={200: dict, **WRITE_ERRORS}, summary="Change a webhook endpoint")
def patch_webhook(request: HttpRequest, id: str, payload: WebhookPatch):
    """``url``, ``events``, ``enabled``; ``rotate_secret: true`` answers a new ``secret`` (the
    old one keeps signing for 24 h)."""
    endpoint = _endpoint(request, id)
    now = timezone.now()

    def run():
        before = endpoint_data(endpoint)
        try:
            secret = update_endpoint(
                endpoint,
                now=now,
                url=payload.url,
                events=payload.events,
                enabled=payload.enabled,
                rotate_secret=payload.rotate_secret,
            )
        except WebhookError as e:
            raise invalid(e.fields) from None
        after = endpoint_data(endpoint)
        _audit(request, "webhook.change", endpoint, before, {**after, "secret_rotated": bool(secret)})
        return 200, endpoint_data(endpoint, secret=secret)

    return write(request, run, now=now)


@router.delete("/webhooks/{id}", response={200: dict, **WRITE_ERRORS}, summary="Delete a webhook endpoint")
def delete_webhook(request: HttpRequest, id: str):
    endpoint = _endpoint(request, id)
    now = timezone.now()

    def run():
        data = endpoint_data(endpoint)
        _audit(request, "webhook.delete", endpoint, data, None)
        endpoint.delete()
        return 200, {**data, "deleted": True}

    return write(request, run, now=now)


@router.get("/webhooks/{id}/deliveries", response={200: Page, **ERRORS}, summary="An endpoint's delivery log")
def list_deliveries(request: HttpRequest, id: str, limit: int | None = None, cursor: str | None = None):
    endpoint = _endpoint(request, id)
    qs = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").prefetch_related("attempt_log")
    return page(qs, limit=limit, cursor=cursor, render=delivery_data)


@router.post(
    "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    response={200: dict, **WRITE_ERRORS},
    summary="Deliver an event again",
)
def post_redeliver(request: HttpRequest, id: str, delivery_id: str):
    endpoint = _endpoint(request, id)
    if not (delivery_id.isascii() and delivery_id.isdigit()) or len(delivery_id) > 18:
        raise not_found("delivery")
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, pk=int(delivery_id)).select_related("event").first()
    if delivery is None:
        raise not_found("delivery")
    now = timezone.now()

    def run():
        redeliver(delivery, now=now)
        _audit(
            request,
            "webhook.redeliver",
            endpoint,
            None,
            {"delivery": str(delivery.pk), "event": delivery.event.event_id},
        )
        return 200, delivery_data(delivery)

    return write(request, run, now=now)
