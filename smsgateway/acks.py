"""Downlink frames: the ack (computed from what is stored) and other server messages, sealed
and written to the outbox inside the caller's transaction, sent after it commits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from audit.models import Outcome
from audit.services import record
from devices.models import Meter, MeterKey
from devices.selectors import downlink_key, session_keys
from meteragent.protocol import Ack, DisplayCode, Message, encode_downlink

from .models import InboundMessage, InboundStatus, OutboundKind, OutboundMessage, OutboundStatus

logger = logging.getLogger("smsgateway")


def high_water_mark(meter: Meter) -> int | None:
    """The meter's contiguous high-water mark, extended from `meter.acked_through_hour` over
    the hour ranges covered by accepted reports (a report covers every hour from its first to
    its last reading: the meter sends all it has in that range). Call under the meter's lock,
    in the transaction that stored the readings; the caller saves the result."""
    hwm = meter.acked_through_hour
    ranges = (
        InboundMessage.objects.filter(
            meter=meter, status=InboundStatus.ACCEPTED, last_hour__isnull=False
        )
        .filter(last_hour__gt=hwm if hwm is not None else -1)
        .order_by("first_hour")
        .values_list("first_hour", "last_hour")
    )
    return extend_mark(hwm, ranges)


def extend_mark(hwm: int | None, ranges: Iterable[tuple[int, int]]) -> int | None:
    """Extend a high-water mark over (first hour, last hour) ranges sorted by first hour, up
    to the first gap; with no mark yet, the first range starts it."""
    for first, last in ranges:
        if hwm is None:
            hwm = first - 1
        if first > hwm + 1:
            break
        hwm = max(hwm, last)
    return hwm


def sent_today(meter_ids: Iterable[int], *, now: datetime) -> Counter[int]:
    """Outbound SMS per meter in the last 24 hours that count towards the daily cap (S12):
    every one but those the cap held back."""
    return Counter(
        dict(
            OutboundMessage.objects.filter(
                meter_id__in=set(meter_ids), created_at__gte=now - timedelta(days=1)
            )
            .exclude(status=OutboundStatus.CAPPED)
            .values("meter_id")
            .annotate(n=Count("id"))
            .values_list("meter_id", "n")
        )
    )


def queue_downlink(
    meter: Meter, message: Message, *, kind: str, now: datetime, key: MeterKey | None = None
) -> OutboundMessage:
    """Seal `message` under the meter's downlink key with the next counter and put it in the
    outbox; the send task is enqueued when the surrounding transaction commits. Held (CAPPED)
    instead when the meter's daily outbound cap is reached (S12)."""
    key = key or downlink_key(meter)
    if key is None:
        raise ValueError(f"meter {meter} has no usable key")
    # The increment takes the row lock; the returned value is this frame's counter, never reused.
    counter = _next_downlink_counter(key)
    frame = encode_downlink(message, keys=session_keys(key), counter=counter)
    sim = meter.sim
    capped = sent_today([meter.pk], now=now)[meter.pk] >= settings.SMS_OUTBOUND_DAILY_CAP
    outbound = OutboundMessage.objects.create(
        meter=meter,
        msisdn=sim.msisdn,
        kind=kind,
        payload=frame,
        key_id=key.key_id,
        counter=counter,
        status=OutboundStatus.CAPPED if capped else OutboundStatus.PENDING,
        created_at=now,
        next_attempt_at=now,
    )
    if capped:
        logger.warning("outbound cap reached for meter %s; %s held", meter, kind)
        record(
            "cap.exceeded",
            actor="smsgateway",
            target=f"meter:{meter.number}",
            outcome=Outcome.ALERT,
            details={"cap": "sms_outbound_daily", "limit": settings.SMS_OUTBOUND_DAILY_CAP},
        )
    else:
        from .tasks import send_outbound

        transaction.on_commit(lambda: send_outbound.delay(outbound_id=outbound.pk))
    return outbound


def _next_downlink_counter(key: MeterKey) -> int:
    """Increment and read in one statement (UPDATE … RETURNING)."""
    table = MeterKey._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET downlink_counter = downlink_counter + 1 "  # noqa: S608
            "WHERE id = %s RETURNING downlink_counter",
            [key.pk],
        )
        return cursor.fetchone()[0]


def queue_ack(meter: Meter, *, answers_counter: int, now: datetime) -> OutboundMessage:
    """Ack the report with `answers_counter`, carrying `meter.acked_through_hour` as it is now
    (the caller has just computed it) and the server's time."""
    ack = Ack(
        answers_counter=answers_counter,
        acked_through_hour=meter.acked_through_hour,
        server_time=int(now.timestamp()),
    )
    return queue_downlink(meter, ack, kind=OutboundKind.ACK, now=now)


def queue_display_code(meter: Meter, code: str, *, now: datetime) -> OutboundMessage:
    """Send `code` to the meter's display now (a customer claiming the meter types it back).

    An ack outside the report cycle: it repeats the current high-water mark and answers the
    last uplink counter seen, so the meter's time rules ignore its clock field as not fresh.
    """
    key = downlink_key(meter)
    if key is None:
        raise ValueError(f"meter {meter} has no usable key")
    last_uplink = max(meter.keys.values_list("uplink_highest", flat=True), default=0)
    if last_uplink == 0:
        # The code rides on an ack, which answers a frame the meter sent: a meter never heard
        # from (not installed yet) cannot be sent one.
        raise ValueError(f"meter {meter} has never reported; it cannot show a code yet")
    ack = Ack(
        answers_counter=last_uplink,
        acked_through_hour=meter.acked_through_hour,
        server_time=int(now.timestamp()),
        display_code=DisplayCode(code),
    )
    return queue_downlink(meter, ack, kind=OutboundKind.ACK, now=now, key=key)
