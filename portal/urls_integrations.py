"""Routes of an organization's integrations: admin API tokens and webhook endpoints (SPEC 13, 14).
Appended to ``portal.urls`` (same ``portal`` namespace)."""

from django.urls import path

from .views import integrations

urlpatterns = [
    path("organizations/<str:org_id>/integrations/", integrations.integrations, name="integrations"),
    path("organizations/<str:org_id>/integrations/tokens/", integrations.token_create, name="token_create"),
    path(
        "organizations/<str:org_id>/integrations/tokens/<int:pk>/revoke/",
        integrations.token_revoke,
        name="token_revoke",
    ),
    path("organizations/<str:org_id>/integrations/webhooks/", integrations.endpoint_create, name="webhook_create"),
    path("organizations/<str:org_id>/integrations/webhooks/<int:pk>/", integrations.endpoint_detail, name="webhook"),
    path(
        "organizations/<str:org_id>/integrations/webhooks/<int:pk>/rotate/",
        integrations.endpoint_rotate,
        name="webhook_rotate",
    ),
    path(
        "organizations/<str:org_id>/integrations/webhooks/<int:pk>/delete/",
        integrations.endpoint_delete,
        name="webhook_delete",
    ),
    path(
        "organizations/<str:org_id>/integrations/webhooks/<int:pk>/deliveries/<int:delivery_pk>/redeliver/",
        integrations.delivery_redeliver,
        name="webhook_redeliver",
    ),
]
