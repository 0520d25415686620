"""Staff second factor: TOTP devices (django-otp), enrolment and verification."""

from __future__ import annotations

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import Outcome
from audit.services import record

from .models import User


def verify_totp(user: User, token: str) -> TOTPDevice | None:
    """The user's confirmed TOTP device that accepts `token`, honouring django-otp throttling."""
    token = token.strip().replace(" ", "")
    if not token.isdigit():
        return None
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        allowed, _ = device.verify_is_allowed()
        if allowed and device.verify_token(token):
            return device
    return None


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
