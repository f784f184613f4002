"""Portal pages of the devices app (mounted at the root)."""

from django.urls import path

from . import views

app_name = "devices"

urlpatterns = [
    path("projects/<int:pk>/devices/", views.device_list, name="list"),
    path("devices/<int:pk>/", views.device_detail, name="detail"),
    path("devices/<int:pk>/release/", views.device_release, name="release"),
]
