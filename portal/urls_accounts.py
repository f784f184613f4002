"""Accounts (mounted at /accounts/): Django's auth views with the portal's templates.

The names are Django's own (login, logout, password_reset, ...) because the auth views and
settings.LOGIN_URL reverse them unnamespaced."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    # password-reset/ itself (name "password_reset") is dls_admin.password_reset, rate limited.
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("password_reset_complete")),
        name="password_reset_confirm",
    ),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    # Own template names, so the admin's password change keeps its own look.
    path(
        "password-change/",
        auth_views.PasswordChangeView.as_view(template_name="registration/portal_password_change_form.html"),
        name="password_change",
    ),
    path(
        "password-change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/portal_password_change_done.html"),
        name="password_change_done",
    ),
]
