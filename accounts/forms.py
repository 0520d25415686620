from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django_otp.forms import otp_verification_failed

from audit.models import Outcome
from audit.services import record
from utility.client_address import client_address

from .lockout import note_staff_login_failure, staff_login_locked
from .otp import note_second_factor_failure, staff_device, verify_totp


class StaffLoginForm(AdminAuthenticationForm):
    """E-mail, password and authenticator code in one step; a wrong code and a wrong password
    give the same answer, so the form reveals nothing about which factor failed. Every failure
    does the same work, so neither does its time: one authenticator lookup, one account lookup
    and one password hash (`backends.StaffBackend`), one write to the account's authenticator,
    one audit record, the lockout counters."""

    otp_token = forms.CharField(
        label="Authenticator code",
        max_length=10,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "required": True}
        ),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct e-mail address, password and authenticator code "
            "of a staff account."
        ),
    }

    def clean(self):
        email = (self.data.get("username") or "").strip().lower()[:254]
        address = client_address(self.request) if self.request else None
        if email and staff_login_locked(email, address):
            record("login.locked_out", actor="anonymous", target=email, outcome=Outcome.DENIED)
            raise ValidationError(
                "Too many failed sign-ins. Try again later or ask a security administrator.",
                code="locked",
            )
        device = staff_device(email)
        try:
            cleaned = super().clean()  # the user_login_failed signal audits a failure
        except ValidationError:
            note_second_factor_failure(device)
            note_staff_login_failure(email, address)
            raise
        user = self.get_user()
        if user is None:  # a field was missing or invalid: the form already has the errors
            return cleaned
        if device is not None and device.user_id != user.pk:
            device = None
        if not verify_totp(device, cleaned.get("otp_token") or ""):
            otp_verification_failed.send(sender=self.__class__, user=user)
            note_staff_login_failure(email, address)
            record(
                "login.otp_failure",
                actor="anonymous",
                target=user.get_username(),
                outcome=Outcome.FAILURE,
            )
            raise self.get_invalid_login_error()
        # django-otp's user_logged_in receiver persists this device in the session.
        user.otp_device = device
        return cleaned
