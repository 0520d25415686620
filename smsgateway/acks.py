"""Composing acks: the answer to a report (the high-water mark the uplink side computed and the
server's time) and the ack that carries a display code. Sealing and sending them is the
outbox's (`outbox.queue`)."""

from __future__ import annotations

from datetime import datetime

from devices.models import Meter
from devices.selectors import downlink_key
from meteragent.protocol import Ack, DisplayCode

from .models import OutboundKind, OutboundMessage
from .outbox.queue import queue_downlink


def ack(answers_counter: int, acked_through_hour: int | None, *, now: datetime) -> Ack:
    """The ack of the report sent with `answers_counter`, carrying the meter's mark."""
    return Ack(
        answers_counter=answers_counter,
        acked_through_hour=acked_through_hour,
        server_time=int(now.timestamp()),
    )


def queue_ack(meter: Meter, *, answers_counter: int, now: datetime) -> OutboundMessage:
    """Ack the report with `answers_counter`, carrying `meter.acked_through_hour` as it is now
    (the caller has just computed it) and the server's time."""
    return queue_downlink(
        meter,
        ack(answers_counter, meter.acked_through_hour, now=now),
        kind=OutboundKind.ACK,
        now=now,
    )


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
    message = Ack(
        answers_counter=last_uplink,
        acked_through_hour=meter.acked_through_hour,
        server_time=int(now.timestamp()),
        display_code=DisplayCode(code),
    )
    return queue_downlink(meter, message, kind=OutboundKind.ACK, now=now, key=key)
