from django.apps import AppConfig


class DlsAdminConfig(AppConfig):
    """The project package as an app: operations commands and the health check. The login
    throttle's signal receivers are django-axes' own (``AXES_HANDLER`` in settings.py)."""

    name = "dls_admin"
    verbose_name = "DLS Admin operations"
