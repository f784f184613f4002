from django.apps import AppConfig


class DlsAdminConfig(AppConfig):
    """The project package as an app: operations commands (simulate_fleet, bench_api), the health
    check, and the login throttle's signal receivers."""

    name = "dls_admin"
    verbose_name = "DLS Admin operations"

    def ready(self) -> None:
        from dls_admin import login_throttle

        login_throttle.connect_signals()
