from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The JSON APIs: the only place that turns an outcome or a refusal into an HTTP status."""

    name = "api"
