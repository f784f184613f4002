"""Celery task of the admin API (beat entry in ``usage.schedule``): it reads the clock and calls
its service. Webhook delivery is the task ``usage.deliver_webhooks`` (``usage.tasks``)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="api.purge_idempotency_keys", acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> dict:
    from api.admin.idempotency import purge_idempotency_records

    return {"purged": purge_idempotency_records(now=timezone.now())}
