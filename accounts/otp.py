"""Staff second factor: TOTP devices (django-otp), enrolment and verification."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import Outcome
from audit.services import record

from .models import User


def staff_device(email: str) -> TOTPDevice | None:
    """The authenticator of the staff account with this e-mail, if any (enrolment keeps one).
    The staff login looks it up before the password is checked, for every e-mail alike."""
    return (
        TOTPDevice.objects.filter(user__email=email, user__is_staff=True, confirmed=True)
        .order_by("-pk")
        .first()
    )


def verify_totp(device: TOTPDevice | None, token: str) -> bool:
    """Whether `token` is the device's current code, honouring django-otp's throttling and
    replay protection. One write to the device whatever the outcome: django-otp saves the code
    used or the throttle; with nothing to check, `note_second_factor_failure` writes the same
    statement, so no branch answers sooner."""
    token = token.strip().replace(" ", "")
    if device is not None and token.isdigit() and device.verify_is_allowed()[0]:
        return device.verify_token(token)
    note_second_factor_failure(device)
    return False


def note_second_factor_failure(device: TOTPDevice | None) -> None:
    """A failed staff sign-in slows the account's second factor (django-otp's throttle),
    whichever factor failed: one UPDATE, of no row when there is no such device."""
    TOTPDevice.objects.filter(pk=device.pk if device else None).update(
        throttling_failure_count=F("throttling_failure_count") + 1,
        throttling_failure_timestamp=timezone.now(),
    )


@transaction.atomic
def enrol_totp(user: User, *, by: User | str, reason: str, break_glass: bool = False) -> TOTPDevice:
    """Replace the user's TOTP devices with a new one and return it (its secret shown once)."""
    removed = TOTPDevice.objects.filter(user=user).delete()[0]
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    record(
        "staff.totp_break_glass" if break_glass else "staff.totp_enrolled",
        actor=by,
        target=user.get_username(),
        outcome=Outcome.ALERT if break_glass else Outcome.SUCCESS,
        details={"reason": reason, "devices_replaced": removed},
    )
    return device
