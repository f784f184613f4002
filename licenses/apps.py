from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "licenses"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import signals

        post_migrate.connect(signals.seed_multi_tenant_domains, sender=self)
