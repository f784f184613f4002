"""The beat schedule of SPEC section 8, in code. ``dls_admin/celery.py`` installs it as
``app.conf.beat_schedule``; django-celery-beat's DatabaseScheduler copies it into its
PeriodicTask table at beat start (keeping each task's ``enabled`` flag), so staff see and pause
the tasks in the admin.

Every entry expires (``expire_seconds``, which the database scheduler turns into the message's
``expires``) a little before its next run: a backlog after an outage runs each job once, not
once per missed tick.

``DLS_BEAT_FAST_SECONDS`` (tests only): run ``expire_idle_devices`` every that many seconds.
"""

from __future__ import annotations

import os
from datetime import timedelta

from celery.schedules import crontab


def _entry(task: str, schedule, expire_seconds: int) -> dict:
    return {"task": task, "schedule": schedule, "options": {"expire_seconds": expire_seconds}}


def beat_schedule() -> dict:
    schedule = {
        "expire_idle_devices": _entry("usage.expire_idle_devices", crontab(), 50),
        "rollup_concurrency": _entry("usage.rollup_concurrency", crontab(minute="*/3"), 170),
        "rollup_usage": _entry("usage.rollup_usage", crontab(minute="*/10"), 590),
        # Five minutes after the usage rollup, so alerts follow fresh numbers.
        "send_usage_alerts": _entry("usage.send_usage_alerts", crontab(minute="5-59/10"), 590),
        "send_renewal_reminders": _entry("usage.send_renewal_reminders", crontab(hour=6, minute=0), 6 * 3600),
        "purge_old_data": _entry("usage.purge_old_data", crontab(hour=3, minute=30), 6 * 3600),
        "detect_anomalies": _entry("usage.detect_anomalies", crontab(minute=20), 3000),  # docs/insight.md
        # Webhooks (SPEC 14): coalesce refusals, fan out the outbox, attempt due deliveries.
        "deliver_webhooks": _entry("usage.deliver_webhooks", timedelta(seconds=10), 9),
        "purge_idempotency_keys": _entry("api.purge_idempotency_keys", crontab(hour=3, minute=45), 6 * 3600),
    }
    fast = os.environ.get("DLS_BEAT_FAST_SECONDS")
    if fast:
        seconds = float(fast)
        schedule["expire_idle_devices"] = _entry(
            "usage.expire_idle_devices", timedelta(seconds=seconds), max(1, int(seconds))
        )
    return schedule
