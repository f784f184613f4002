"""The admin API (SPEC section 13), mounted at /api/admin/v1/ (``api.admin.routes.api``).

Django's admin autodiscovery imports ``api.admin``: the ModelAdmins of tokens and webhooks live
in ``api.admin_site`` and are registered from here."""

from api import admin_site  # noqa: F401
