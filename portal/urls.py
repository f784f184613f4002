"""Portal pages (mounted at the root): customers' licenses, projects, devices, statistics and
exports, and the staff dashboard."""

from django.urls import path

from .views import devices, insight, offline, projects, protection, refusals, statistics, team

app_name = "portal"
urlpatterns = [
    path("", projects.home, name="home"),
    path("projects/<int:pk>/", projects.project_detail, name="project"),
    path("projects/<int:pk>/reorder/", projects.project_reorder, name="project_reorder"),
    path("projects/<int:pk>/devices/", devices.device_list, name="devices"),
    path("projects/<int:pk>/statistics/", statistics.statistics, name="statistics"),
    path("projects/<int:pk>/concurrency/", statistics.concurrency, name="concurrency"),
    path("projects/<int:pk>/export/<str:what>.csv", statistics.export_csv, name="export"),
    path("projects/<int:pk>/refusals/", refusals.refusals, name="refusals"),
    path("projects/<int:pk>/protection/", protection.protection, name="protection"),
    path("projects/<int:pk>/rotate-key/", protection.rotate, name="rotate_key"),
    path("projects/<int:pk>/offline/", offline.offline_register, name="offline_register"),
    path("projects/<int:pk>/release-idle/", devices.release_idle_devices, name="release_idle"),
    path("projects/<int:pk>/release-idle/undo/", devices.release_idle_undo, name="release_idle_undo"),
    path("devices/<int:pk>/", devices.device_detail, name="device"),
    path("devices/<int:pk>/release/", devices.device_release, name="device_release"),
    path("organizations/<str:org_id>/alerts/", projects.alert_recipients, name="alert_recipients"),
    path(
        "organizations/<str:org_id>/alerts/<int:pk>/delete/",
        projects.alert_recipient_delete,
        name="alert_recipient_delete",
    ),
    path("organizations/<str:org_id>/", projects.organization_home, name="organization"),
    path("organizations/<str:org_id>/team/", team.team, name="team"),
    path("organizations/<str:org_id>/team/<int:pk>/role/", team.member_role, name="member_role"),
    path("organizations/<str:org_id>/team/<int:pk>/remove/", team.member_remove, name="member_remove"),
    path("organizations/<str:org_id>/invitations/<int:pk>/cancel/", team.invitation_cancel, name="invitation_cancel"),
    path("invitations/<str:token>/", team.invitation_accept, name="invitation_accept"),
    path("staff/", projects.staff_dashboard, name="staff_dashboard"),
    # Insight (docs/insight.md): what-if replay, right quantity, seat burn, anomaly flags.
    path("projects/<int:pk>/insight/", insight.project_insight, name="insight"),
    path("projects/<int:pk>/seat-burn/", insight.seat_burn, name="seat_burn"),
    path("projects/<int:pk>/items/<int:item_pk>/what-if/", insight.item_insight, name="item_insight"),
    path("projects/<int:pk>/items/<int:item_pk>/what-if/<int:run_pk>/", insight.replay_run, name="replay_run"),
    path("staff/insight/", insight.staff_insight, name="staff_insight"),
]
from .urls_integrations import urlpatterns as integrations_urls  # noqa: E402  (tokens and webhooks)

urlpatterns += integrations_urls
