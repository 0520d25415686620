"""Customer forms: the meter number at sign-up and reset, the meter code, deletion requests.

Validation errors depend only on what was typed (format, rate limits), never on whether a
meter or an account exists.
"""

from __future__ import annotations

from django import forms
from django.utils import timezone

from audit.caps import CapExceeded, capped
from audit.services import record

from . import limits
from .services import normalise_meter_number, request_claim

METER_HELP = "The 25 letters and digits on the sticker on the front of your meter."
BAD_NUMBER = "Enter the 25 letters and digits printed on your meter's sticker."
TOO_MANY = "Too many attempts with these details. Please try again later."
PAUSED = "This service is busy. Please try again in an hour."


class MeterNumberField(forms.CharField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", "Meter number")
        kwargs.setdefault("help_text", METER_HELP)
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)
        self.widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})

    def clean(self, value):
        value = super().clean(value)
        number = normalise_meter_number(value)
        if number is None:
            raise forms.ValidationError(BAD_NUMBER)
        return number


class MeterNumberSignupForm(forms.Form):
    """Extra fields for allauth's sign-up form (ACCOUNT_SIGNUP_FORM_CLASS)."""

    meter_number = MeterNumberField()

    def clean(self):
        cleaned = super().clean()
        number, email = cleaned.get("meter_number"), cleaned.get("email")
        if number and email:
            over_meter = limits.hit("signup_per_meter", number)
            over_email = limits.hit("signup_per_email", email)
            if over_meter or over_email:
                record(
                    "customer.signup_limited",
                    actor="anonymous",
                    target=f"meter:{number}",
                    outcome="denied",
                    details={"meter": over_meter, "email": over_email},
                )
                raise forms.ValidationError(TOO_MANY)
            try:
                # Counted for known and unknown addresses alike (the cap's counter), under the
                # cap's lock so concurrent sign-ups count one another.
                with capped("accounts.signup_requested", actor="anonymous"):
                    record("accounts.signup_requested", actor="anonymous", target=f"meter:{number}")
            except CapExceeded:
                raise forms.ValidationError(PAUSED) from None
        return cleaned

    def signup(self, request, user) -> None:
        """Called by allauth for a new account only; the claim waits for the meter's code."""
        request_claim(user, self.cleaned_data["meter_number"], now=timezone.now())


class RequestClaimForm(forms.Form):
    meter_number = MeterNumberField()


class ClaimCodeForm(forms.Form):
    meter_number = MeterNumberField()
    code = forms.RegexField(
        regex=r"^\s*\d{6,8}\s*$",
        label="Code shown on the meter",
        help_text="The meter shows it on its display within a few minutes.",
        error_messages={"invalid": "The code is 6 to 8 digits."},
    )
    code.widget.attrs.update({"inputmode": "numeric", "autocomplete": "one-time-code"})


class DeletionRequestForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, required=False, max_length=2000)
    confirm = forms.BooleanField(label="I want my account deleted.")
