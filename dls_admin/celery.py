"""The Celery app. The beat schedule lives in ``usage.schedule`` (code, not the database);
django-celery-beat's database scheduler loads it so staff can see and pause tasks in the admin.

Broker: Redis when ``REDIS_URL`` is set, otherwise kombu's ``filesystem://`` transport under
``var/`` (no daemon needed). Its folders must exist before a worker or beat starts, and its
``control_folder`` (fanout exchanges: remote control, events) would default to ``./control`` in
whatever directory the process was started from, so it is pinned under ``var/`` too."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dls_admin.settings")

app = Celery("dls_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _prepare_filesystem_broker() -> None:
    if not str(app.conf.broker_url or "").startswith("filesystem://"):
        return
    options = dict(app.conf.broker_transport_options or {})
    folder = os.environ.get("DLS_BROKER_DIR")  # a private broker folder (tests, several checkouts)
    if folder:
        options.update(
            data_folder_in=f"{folder}/broker",
            data_folder_out=f"{folder}/broker",
            processed_folder=f"{folder}/processed",
            control_folder=f"{folder}/control",
        )
    data_in = options.get("data_folder_in")
    if data_in:
        options.setdefault("control_folder", str(Path(data_in).parent / "celery-control"))
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
    app.conf.broker_transport_options = options


def _install_beat_schedule() -> None:
    from usage.schedule import beat_schedule

    app.conf.beat_schedule = beat_schedule()


@setup_logging.connect
def _use_django_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (plain or JSON lines on stdout), like the
    web processes. Without this Celery installs its own handlers, and the ``celery`` logger of
    settings.LOGGING, whose stream is sys.stdout, ends up writing into Celery's stdout
    redirection proxy, which drops the records: worker and beat logs vanished."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


_prepare_filesystem_broker()
_install_beat_schedule()
