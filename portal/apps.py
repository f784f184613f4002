from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Every HTML page, customers' and staff's: it reads licenses, devices and usage alike, so it
    sits above all three (README, "Layout")."""

    name = "portal"
