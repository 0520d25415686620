"""Sending the key agreement of scheduled rotations (devices.KeyRotation) to the meters, and
stalling those the meter never answered."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction

from devices.models import KeyRotation, MeterStatus, RotationState
from devices.services import rekey_init, stall_rotation

from .models import OutboundKind
from .outbox.queue import queue_downlink

# At most this many stalled meters are named in one alert mail; the admin lists them all.
_MAIL_NAMES = 20


def send_rekey_inits(*, now: datetime) -> int:
    """Send REKEY_INIT for new rotations of active meters, and again for those whose answer has
    not come within REKEY_RESEND_HOURS (the INIT or the ACCEPT was lost). Returns how many were
    sent."""
    resend_before = now - timedelta(hours=settings.REKEY_RESEND_HOURS)
    due = KeyRotation.objects.filter(state=RotationState.SCHEDULED) | KeyRotation.objects.filter(
        state=RotationState.INIT_SENT,
        last_sent_at__lt=resend_before,
        init_attempts__lt=settings.REKEY_MAX_ATTEMPTS,
    )
    sent = 0
    # A suspended meter's rotation pauses: its messages are refused until it is reactivated.
    due = due.filter(meter__status=MeterStatus.ACTIVE)
    for rotation in due.select_related("meter").order_by("pk")[:500]:
        with transaction.atomic():
            init, old_key = rekey_init(rotation, now=now)
            queue_downlink(rotation.meter, init, kind=OutboundKind.REKEY, now=now, key=old_key)
        sent += 1
    return sent


def stall_unanswered_rotations(*, now: datetime) -> int:
    """Rotations whose last allowed INIT went unanswered for REKEY_RESEND_HOURS are stalled:
    resending stops, each meter gets an alert, and the operators one mail per sweep. Staff
    then cancel or restart them (admin: Key rotations). Returns how many were stalled."""
    resend_before = now - timedelta(hours=settings.REKEY_RESEND_HOURS)
    exhausted = KeyRotation.objects.filter(
        state=RotationState.INIT_SENT,
        last_sent_at__lt=resend_before,
        init_attempts__gte=settings.REKEY_MAX_ATTEMPTS,
    ).select_related("meter")
    stalled = [str(r.meter) for r in exhausted.order_by("pk")[:500] if stall_rotation(r, now=now)]
    if stalled:
        names = ", ".join(stalled[:_MAIL_NAMES]) + (" …" if len(stalled) > _MAIL_NAMES else "")
        mail_admins(
            f"{len(stalled)} key rotations out of attempts",
            f"No answer after {settings.REKEY_MAX_ATTEMPTS} key agreements: {names}.\n"
            "Cancel or restart them in the admin (Key rotations, filter 'stalled').",
        )
    return len(stalled)
