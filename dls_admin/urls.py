"""Routes: the JSON APIs, operations endpoints, accounts and the portal."""

from django.contrib import admin
from django.urls import include, path

from api.admin.routes import api as admin_api
from api.device import api
from dls_admin import password_reset

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/admin/v1/", admin_api.urls),
    path("", include("api.urls")),  # /.well-known/jwks.json
    path("", include("dls_admin.urls_ops")),  # /healthz
    # The reset form is rate limited and answers alike for known and unknown addresses.
    path("accounts/password-reset/", password_reset.view, name="password_reset"),
    path("accounts/", include("portal.urls_accounts")),  # login, logout, the rest of password reset
    path("", include("portal.urls")),  # the portal and the staff dashboard
]
handler403 = "portal.errors.permission_denied"  # the product's own error pages (SPEC 10)
handler404 = "portal.errors.page_not_found"
handler500 = "portal.errors.server_error"
