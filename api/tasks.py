"""Celery tasks of the admin API and webhooks (beat entries in ``usage.schedule``). Each reads
the clock and calls its service; ``acks_late`` is safe: a delivery is claimed with a lease, so a
task run again after a worker died re-picks only what that worker left unfinished."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="api.deliver_webhooks", acks_late=True, ignore_result=True)
def deliver_webhooks() -> dict:
    from api.webhooks import run_webhooks

    return run_webhooks(now=timezone.now(), clock=timezone.now)


@shared_task(name="api.purge_idempotency_keys", acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> dict:
    from api.admin.idempotency import purge_idempotency_records

    return {"purged": purge_idempotency_records(now=timezone.now())}
