"""allauth form overrides: login always by password, reset by e-mail and meter number (kept apart
from forms_customer: allauth imports the sign-up form class while its own forms load)."""

from __future__ import annotations

from allauth.account.adapter import get_adapter
from allauth.account.forms import LoginForm, ResetPasswordForm, SignupForm
from allauth.account.internal.flows.password_reset import request_password_reset
from django import forms
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from audit.caps import capped
from audit.services import record

from . import customer_limits
from .forms_customer import TOO_MANY, MeterNumberField


class CustomerLoginForm(LoginForm):
    """E-mail and password. (Sign-up asks for no password, the customer sets it after the meter
    code, so allauth would otherwise offer a password-less login by e-mailed code.)"""

    def _setup_password_field(self) -> None:
        return None


class CustomerSignupForm(SignupForm):
    """Sign-up whose race on a new e-mail address answers like a duplicate: requests that all
    found the address free race to create the account; the losers' unique-constraint error
    becomes allauth's answer to an existing account (the same page, a mail to the address)."""

    def try_save(self, request):
        try:
            with transaction.atomic():  # the account and its claim, or neither
                return super().try_save(request)
        except IntegrityError:
            if (
                not get_user_model()
                .objects.filter(email__iexact=self.cleaned_data.get("email", ""))
                .exists()
            ):
                raise
            self.account_already_exists = True
            return super().try_save(request)


class CustomerResetPasswordForm(ResetPasswordForm):
    """Reset needs the e-mail and a meter number of the account. The mailbox is told what
    happened in every case; the page is the same in every case."""

    meter_number = MeterNumberField()

    def clean(self):
        cleaned = super().clean()
        number = cleaned.get("meter_number")
        if number and customer_limits.hit("reset_per_meter", number):
            raise forms.ValidationError(TOO_MANY)
        return cleaned

    def _users_with_meter(self, number: str) -> list:
        """The accounts with this e-mail that occupy or have claimed this meter."""
        from .models import MeterClaim, MeterOccupancy

        return [
            user
            for user in self.users
            if MeterOccupancy.objects.filter(user=user, meter__number=number).exists()
            or MeterClaim.objects.filter(user=user, meter_number=number).exists()
        ]

    def save(self, request, **kwargs) -> str:
        """Called by allauth's view after its own rate limits, so refused requests are not
        counted. Raises CapExceeded (nothing sent) over the fleet-wide cap (S12); the record is
        written under the cap's lock, so concurrent requests count one another."""
        email, number = self.cleaned_data["email"], self.cleaned_data["meter_number"]
        users, matching = list(self.users), self._users_with_meter(number)
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
