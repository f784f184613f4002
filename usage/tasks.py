"""Celery tasks: one per job of SPEC section 8. Each reads the clock and calls its service.

The services are idempotent (a second run changes nothing more), so ``acks_late`` is safe: a
task redelivered after a worker died simply runs again."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from usage import jobs


def _run(name: str) -> dict:
    return jobs.JOBS[name](now=timezone.now())


@shared_task(name="usage.expire_idle_devices", acks_late=True, ignore_result=True)
def expire_idle_devices() -> dict:
    return _run("expire_idle_devices")


@shared_task(name="usage.rollup_concurrency", acks_late=True, ignore_result=True)
def rollup_concurrency() -> dict:
    return _run("rollup_concurrency")


@shared_task(name="usage.rollup_usage", acks_late=True, ignore_result=True)
def rollup_usage() -> dict:
    return _run("rollup_usage")


@shared_task(name="usage.send_usage_alerts", acks_late=True, ignore_result=True)
def send_usage_alerts() -> dict:
    return _run("send_usage_alerts")


@shared_task(name="usage.send_renewal_reminders", acks_late=True, ignore_result=True)
def send_renewal_reminders() -> dict:
    return _run("send_renewal_reminders")


@shared_task(name="usage.purge_old_data", acks_late=True, ignore_result=True)
def purge_old_data() -> dict:
    return _run("purge_old_data")


@shared_task(name="usage.detect_anomalies", acks_late=True, ignore_result=True)
def detect_anomalies() -> dict:
    return _run("detect_anomalies")


@shared_task(name="usage.deliver_webhooks", acks_late=True, ignore_result=True)
def deliver_webhooks() -> dict:
    """Webhooks (SPEC 14, every 10 s): each attempt is signed at the wall clock of its moment. A
    delivery is claimed with a lease, so a run after a worker died re-picks only what it left."""
    from usage.webhooks.dispatch import run_webhooks

    return run_webhooks(now=timezone.now(), clock=timezone.now)


@shared_task(name="usage.run_replay", acks_late=True, ignore_result=True)
def run_replay(run_id: int) -> None:
    """A what-if replay of a long window (``usage.replay``), its progress in its ``ReplayRun``."""
    from usage.replay import run_stored

    run_stored(run_id, now=timezone.now)
