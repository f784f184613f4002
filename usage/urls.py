"""Portal pages of the usage app (mounted at the root)."""

from django.urls import path

from . import views

app_name = "usage"

urlpatterns = [
    path("projects/<int:pk>/statistics/", views.statistics, name="statistics"),
    path("projects/<int:pk>/concurrency/", views.concurrency, name="concurrency"),
    path("projects/<int:pk>/export/<str:what>.csv", views.export_csv, name="export"),
]
