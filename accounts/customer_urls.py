"""Customer account URLs under /accounts/: ours first, then allauth's (login, sign-up, e-mail,
password, 2FA, sessions)."""

from django.urls import include, path

from . import customer_views

urlpatterns = [
    path("claim/", customer_views.claim, name="customer_claim"),
    path("settings/", customer_views.account_settings, name="customer_settings"),
    path("delete/", customer_views.delete_account, name="customer_delete"),
    path(
        "password/reset/",
        customer_views.PasswordResetPausableView.as_view(),
        name="account_reset_password",
    ),
    path("", include("allauth.urls")),
]
