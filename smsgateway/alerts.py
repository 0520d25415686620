"""Meter alerts raised by the gateway: silence beyond the schedule (S7), tamper and store
integrity events, bursts of failed authentication from one meter's SIM."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from devices.models import AlertKind, Meter, MeterAlert, MeterStatus
from devices.services import open_alert

from .models import InboundMessage, InboundStatus

ALERTING_EVENTS = {"tamper", "store_integrity"}


def meter_heard(meter: Meter, *, now: datetime) -> None:
    meters_heard([meter.pk], now=now)


def meters_heard(meter_ids: Iterable[int], *, now: datetime) -> None:
    """Close the silence alerts of meters that were heard again."""
    MeterAlert.objects.filter(
        meter_id__in=list(meter_ids), kind=AlertKind.SILENT, closed_at__isnull=True
    ).update(closed_at=now)


def meter_events(meter: Meter, kinds: Iterable[str], *, now: datetime) -> None:
    alerting = sorted(set(kinds) & ALERTING_EVENTS)
    if alerting:
        open_alert(meter, AlertKind.TAMPER, now=now, details={"events": alerting})


def authentication_failure(meter: Meter, *, now: datetime) -> None:
    window = now - timedelta(seconds=settings.SMS_AUTH_FAILURE_WINDOW)
    recent = InboundMessage.objects.filter(
        meter=meter,
        status=InboundStatus.REJECTED,
        reason__in=settings.SMS_AUTH_FAILURE_REASONS,
        received_at__gte=window,
    ).count()
    if recent >= settings.SMS_AUTH_FAILURE_BURST:
        open_alert(meter, AlertKind.AUTH_FAILURES, now=now, details={"failures": recent})


def counter_behind_window(meter: Meter, *, now: datetime, detail: str) -> None:
    """An authentic frame whose counter is far behind the meter's window: the meter went back
    in its counters (its storage rolled back and its clock wrong, docs/meteragent.md "Counter
    floor"), so it may have reused AES-GCM nonces under this key. Staff look, and rotate."""
    open_alert(meter, AlertKind.TAMPER, now=now, details={"counter_behind_window": detail[:200]})


def flag_silent_meters(*, now: datetime) -> int:
    """Open a SILENT alert for every active meter not heard from within its schedule plus the
    grace period (S7). Returns how many were newly flagged."""
    limit = now - timedelta(hours=settings.METER_SILENCE_HOURS)
    silent = Meter.objects.filter(status=MeterStatus.ACTIVE, last_message_at__lt=limit).exclude(
        alerts__kind=AlertKind.SILENT, alerts__closed_at__isnull=True
    )
    flagged = 0
    for meter in silent.iterator():
        flagged += open_alert(
            meter,
            AlertKind.SILENT,
            now=now,
            details={"last_message_at": meter.last_message_at.isoformat()},
        )
    return flagged
