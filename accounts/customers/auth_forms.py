"""allauth form overrides: login always by password, reset by e-mail and meter number (kept apart
from `forms`: allauth imports the sign-up form class while its own forms load)."""

from __future__ import annotations

from allauth.account.adapter import get_adapter
from allauth.account.forms import LoginForm, ResetPasswordForm, SignupForm
from allauth.account.internal.flows.email_verification import (
    add_email_verification_sent_message,
)
from allauth.account.internal.flows.password_reset import request_password_reset
from django import forms

from accounts.selectors import users_with_email, users_with_email_and_meter
from audit.caps import capped
from audit.services import record

from . import limits, services
from .forms import TOO_MANY, MeterNumberField


class CustomerLoginForm(LoginForm):
    """E-mail and password. (Sign-up asks for no password, the customer sets it after the meter
    code, so allauth would otherwise offer a password-less login by e-mailed code.)"""

    def _setup_password_field(self) -> None:
        return None


class CustomerSignupForm(SignupForm):
    """E-mail and meter number (`forms.MeterNumberSignupForm`). The request does the
    same work whatever exists: no lookup of the address here (allauth's would tell by its
    time), one queued task that makes the account or mails the address that it has one, the
    same answer."""

    def validate_unique_email(self, value: str) -> str:
        return value  # decided by the task, where its time tells nobody anything

    def try_save(self, request):
        email = self.cleaned_data["email"]
        services.queue_registration(
            request, email=email, meter_number=self.cleaned_data["meter_number"]
        )
        add_email_verification_sent_message(request, email, signup=True)
        return None, get_adapter().respond_email_verification_sent(request, None)


class CustomerResetPasswordForm(ResetPasswordForm):
    """Reset needs the e-mail and a meter number of the account. The mailbox is told what
    happened in every case; the page is the same in every case, and so is the work: two
    lookups, one audit record, one queued e-mail."""

    meter_number = MeterNumberField()

    def clean_email(self) -> str:
        # One lookup whatever exists (allauth's skips a query for a verified address).
        email = get_adapter().clean_email(self.cleaned_data["email"].lower())
        self.users = list(users_with_email(email).filter(is_active=True))
        return self.cleaned_data["email"]

    def clean(self):
        cleaned = super().clean()
        number = cleaned.get("meter_number")
        if number and limits.hit("reset_per_meter", number):
            raise forms.ValidationError(TOO_MANY)
        return cleaned

    def save(self, request, **kwargs) -> str:
        """Called by allauth's view after its own rate limits, so refused requests are not
        counted. Raises CapExceeded (nothing sent) over the fleet-wide cap (S12); the record is
        written under the cap's lock, so concurrent requests count one another."""
        email, number = self.cleaned_data["email"], self.cleaned_data["meter_number"]
        users = self.users
        matching = list(users_with_email_and_meter(email, number).filter(is_active=True))
        with capped("accounts.password_reset_requested", actor="anonymous"):
            record(
                "accounts.password_reset_requested",
                actor="anonymous",
                target=email,
                details={"meter_matched": bool(matching)},
            )
        if users and not matching:
            get_adapter().send_mail(
                "account/email/password_reset_meter_mismatch", email, {"request": request}
            )
        else:
            request_password_reset(request, email, matching, kwargs.get("token_generator"))
        return email
