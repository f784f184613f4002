"""Portal pages of the licenses app (mounted at the root) and the staff dashboard."""

from django.urls import path

from . import views

app_name = "licenses"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
    path("projects/<int:pk>/reorder/", views.project_reorder, name="project_reorder"),
    path("organizations/<str:org_id>/alerts/", views.alert_recipients, name="alert_recipients"),
    path(
        "organizations/<str:org_id>/alerts/<int:pk>/delete/",
        views.alert_recipient_delete,
        name="alert_recipient_delete",
    ),
    path("staff/", views.staff_dashboard, name="staff_dashboard"),
]
