"""allauth adapter for customers: where to go after each step, staff kept out of the customer
login, and lockouts on password guessing audited and alerted."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.sites.shortcuts import get_current_site
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import mail_admins
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.conf import setting
from accounts.models import MeterOccupancy
from audit.models import Outcome
from audit.services import record
from utility.client_address import client_address

from . import limits, services


def next_step_url(user) -> str:
    """Sign-up order: confirmed e-mail → meter code → password → portal."""
    if not MeterOccupancy.objects.filter(user=user).exists():
        return reverse("customer_claim")
    if not user.has_usable_password():
        return reverse("account_set_password")
    return reverse("portal:home")


class CustomerAccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Rendered here, delivered by a worker: every branch of sign-up and reset queues one.
        # Sign-up mails are rendered by a task, without a request: links use SITE_URL.
        from allauth.core import context as allauth_context

        request = allauth_context.request
        site = get_current_site(request) if request is not None else services.site()
        ctx = {"request": request, "email": email, "current_site": site}
        ctx.update(context)
        services.queue_email(self.render_mail(template_prefix, email, ctx))

    def get_email_confirmation_url(self, request: HttpRequest | None, emailconfirmation) -> str:
        if request is not None:
            return super().get_email_confirmation_url(request, emailconfirmation)
        return services.site_url(reverse("account_confirm_email", args=[emailconfirmation.key]))

    def send_account_already_exists_mail(self, email: str) -> None:
        self.send_mail(
            "account/email/account_already_exists",
            email,
            {
                "signup_url": services.site_url(reverse("account_signup")),
                "password_reset_url": services.site_url(reverse("account_reset_password")),
            },
        )

    def get_client_ip(self, request: HttpRequest) -> str:
        # allauth's rate limits key on this: the project's one proxy rule, not allauth's count.
        address = client_address(request)
        if not address:
            raise PermissionDenied("Unable to determine client IP address")
        return address

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return next_step_url(request.user)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        if request.user.is_authenticated:
            return next_step_url(request.user)
        return super().get_signup_redirect_url(request)

    def get_email_verification_redirect_url(self, email_address) -> str:
        request = self.request
        if not request.user.is_authenticated and services.signed_up_here(request, email_address):
            # The account was made by a task after this browser signed up, so allauth's own
            # login-on-confirmation (which needs the account in the session) cannot apply.
            login(request, email_address.user, backend="accounts.backends.CustomerBackend")
        if request.user.is_authenticated:
            return next_step_url(request.user)
        return reverse("account_login")

    def get_password_change_redirect_url(self, request: HttpRequest) -> str:
        return next_step_url(request.user)

    def pre_login(self, request: HttpRequest, user, **kwargs: Any) -> HttpResponse | None:
        if user.is_staff:
            # Staff sign in only at the staff login, with their second factor.
            from allauth.account.internal.stagekit import clear_login

            clear_login(request)
            record(
                "customer.staff_login_refused",
                actor=user,
                target=user.get_username(),
                outcome=Outcome.DENIED,
            )
            messages.error(request, "Staff accounts sign in at the staff login.")
            return HttpResponseRedirect(reverse("admin:login"))
        return super().pre_login(request, user, **kwargs)

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            email = str(credentials.get("email") or "")[:254].lower()
            # One alert per address and window, not one per refused attempt.
            if cache.add(limits.key_for("lockout_alerted", email), 1, timeout=900):
                record(
                    "customer.login_locked",
                    actor="anonymous",
                    target=email,
                    outcome=Outcome.ALERT,
                    details={"limit": "login_failed"},
                )
            raise

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        email = str(credentials.get("email") or "")[:254].lower()
        limits.hit("login_failures_alert", email)
        limit, _ = setting("CUSTOMER_LIMITS")["login_failures_alert"]
        if limits.count("login_failures_alert", email) == limit:
            record(
                "customer.password_guessing",
                actor="anonymous",
                target=email,
                outcome=Outcome.ALERT,
                details={"failures": limit},
            )
            mail_admins(
                "Customer password guessing",
                f"{limit} failed customer logins for one address within 15 minutes; the address "
                "is locked out by the login rate limit. See the audit log (login.failure).",
            )
