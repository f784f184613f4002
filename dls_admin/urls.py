"""Routes. Each app owns its own url module; the device API is one django-ninja router."""

from django.contrib import admin
from django.urls import include, path

from devices.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("devices.urls_api")),  # /.well-known/jwks.json
    path("", include("dls_admin.urls_ops")),  # /healthz
    path("accounts/", include("licenses.urls_accounts")),  # login, logout, password reset
    path("", include("licenses.urls")),  # portal: licenses, projects; staff dashboard
    path("", include("devices.urls")),  # portal: devices and servers
    path("", include("usage.urls")),  # portal: statistics, concurrency, exports
]
