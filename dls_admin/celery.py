"""The Celery app. The beat schedule lives in ``usage.schedule`` (code, not the database);
django-celery-beat's database scheduler loads it so staff can see and pause tasks in the admin."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dls_admin.settings")

app = Celery("dls_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
