import pytest
from celery.schedules import crontab
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from api import tasks as api_tasks  # noqa: F401  (registers the idempotency task)
from dls_admin.celery import app
from usage import tasks
from usage.schedule import beat_schedule

pytestmark = pytest.mark.django_db

SPEC = {
    "expire_idle_devices": ("*", "*", "*"),  # every minute
    "rollup_concurrency": ("*/3", "*", "*"),
    "rollup_usage": ("*/10", "*", "*"),
    "send_usage_alerts": ("5-59/10", "*", "*"),
    "send_renewal_reminders": ("0", "6", "*"),  # daily
    "purge_old_data": ("30", "3", "*"),  # daily
}
WEBHOOKS = {"deliver_webhooks": "usage.deliver_webhooks", "purge_idempotency_keys": "api.purge_idempotency_keys"}


def test_the_schedule_in_code_covers_every_job_with_crontab_and_expiry():
    schedule = beat_schedule()
    assert set(schedule) == set(SPEC) | set(WEBHOOKS) | {"detect_anomalies"}  # docs/insight.md, hourly
    for name, task in WEBHOOKS.items():  # SPEC 14: delivery every 10 s, idempotency keys purged daily
        assert schedule[name]["task"] == task and task in app.tasks
    assert schedule["deliver_webhooks"]["schedule"].total_seconds() == 10
    for name, entry in ((n, schedule[n]) for n in SPEC):
        assert isinstance(entry["schedule"], crontab)
        assert entry["task"] == f"usage.{name}" and entry["task"] in app.tasks
        assert 0 < entry["options"]["expire_seconds"]
    assert app.conf.beat_schedule.keys() == schedule.keys()
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


# The scheduler closes stale database connections as it works: a transactional test.
@pytest.mark.django_db(transaction=True)
def test_the_database_scheduler_loads_it_and_keeps_a_pause_staff_set():
    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler.setup_schedule()
    tasks_by_name = {t.name: t for t in PeriodicTask.objects.all()}
    for name, (minute, hour, dow) in SPEC.items():
        t = tasks_by_name[name]
        assert (t.crontab.minute, t.crontab.hour, t.crontab.day_of_week) == (minute, hour, dow)
        assert t.enabled and t.task == f"usage.{name}" and t.expire_seconds > 0
    assert set(scheduler.schedule) >= set(SPEC)
    assert scheduler.schedule["rollup_usage"].options["expires"] == 590

    # Staff pause a task in the admin; a restarted beat loads the code again but keeps the pause.
    PeriodicTask.objects.filter(name="purge_old_data").update(enabled=False)
    restarted = DatabaseScheduler(app=app, lazy=True)
    restarted.setup_schedule()
    assert not PeriodicTask.objects.get(name="purge_old_data").enabled
    assert "purge_old_data" not in restarted.schedule and "rollup_usage" in restarted.schedule


def test_a_task_calls_its_service_with_the_current_time(now, time_machine):
    time_machine.move_to(now)
    assert tasks.rollup_usage.apply().get()["watermark"] == "2026-11-27T17:24:00Z"
