"""Customer account URLs under /accounts/: ours first, then allauth's (login, sign-up, e-mail,
password, 2FA, sessions)."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("claim/", views.claim, name="customer_claim"),
    path("settings/", views.account_settings, name="customer_settings"),
    path("delete/", views.delete_account, name="customer_delete"),
    path(
        "password/reset/",
        views.PasswordResetPausableView.as_view(),
        name="account_reset_password",
    ),
    path("", include("allauth.urls")),
]
