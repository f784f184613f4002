"""Operations routes: /healthz (database and Redis) and /healthz/ping (no dependency)."""

from django.urls import path

from dls_admin import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("healthz/ping", views.ping, name="healthz-ping"),
]
