from django.apps import AppConfig


class ToolsConfig(AppConfig):
    """Development tooling on the reference client: simulator, load generator, benchmarks.
    Installed only when settings.DEV_TOOLS is on (never in production)."""

    name = "client.tools"
    label = "dls_tools"
