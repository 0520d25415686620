"""Sending the key agreement of scheduled rotations (devices.KeyRotation) to the meters."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from devices.models import KeyRotation, RotationState
from devices.services import rekey_init

from .acks import queue_downlink
from .models import OutboundKind


def send_rekey_inits(*, now: datetime) -> int:
    """Send REKEY_INIT for new rotations, and again for those whose answer has not come
    within REKEY_RESEND_HOURS (the INIT or the ACCEPT was lost). Returns how many were sent."""
    resend_before = now - timedelta(hours=settings.REKEY_RESEND_HOURS)
    due = KeyRotation.objects.filter(state=RotationState.SCHEDULED) | KeyRotation.objects.filter(
        state=RotationState.INIT_SENT,
        last_sent_at__lt=resend_before,
        init_attempts__lt=settings.REKEY_MAX_ATTEMPTS,
    )
    sent = 0
    for rotation in due.select_related("meter").order_by("pk")[:500]:
        with transaction.atomic():
            init, old_key = rekey_init(rotation, now=now)
            queue_downlink(rotation.meter, init, kind=OutboundKind.REKEY, now=now, key=old_key)
        sent += 1
    return sent
