"""The inbound path on the sms workers: the webhook has stored each message raw (`intake`);
a drain verifies and decrypts it, stores its readings and queues the ack.

Order matters (S3, S9): the raw message is durable before anything is parsed; the sender is
resolved to a meter and a key; the frame's tag is verified before any payload byte is read; the
replay window, the readings, the events, the message's state and the ack in the outbox are then
written in one transaction, with the message row locked. A message is processed once however
many drains run; one whose processing failed (database down) stays waiting and is processed by
the next drain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from audit.models import Outcome
from audit.services import record
from devices.identifiers import normalise_msisdn
from devices.keystore import KeyStoreError, KeyStoreLocked
from devices.models import KeyState, Meter, MeterEvent, MeterStatus, Sim
from devices.selectors import downlink_key, session_keys, usable_keys
from devices.services import complete_rekey, key_used, register_device_info
from meteragent.protocol import (
    AuthenticationFailed,
    BadVersion,
    DeviceInfo,
    Malformed,
    MessageType,
    Oversized,
    ProtocolError,
    RekeyAccept,
    Replay,
    Report,
    Stale,
    UnknownKeyId,
    decode_uplink,
    parse_header,
)
from meteragent.protocol import (
    KeyState as ProtocolKeyState,
)
from meteragent.protocol.pdu import PduError, parse_udh
from readings.services import store_readings
from utility.pg import advisory_xact_lock

from . import alerts, rules
from .models import InboundMessage, InboundStatus, RejectReason

logger = logging.getLogger("smsgateway")

MAX_CONCAT_PARTS = 8
CONCAT_TIMEOUT = timedelta(hours=1)
_PROTOCOL_REASONS: dict[type[ProtocolError], str] = {
    Oversized: RejectReason.OVERSIZED,
    BadVersion: RejectReason.BAD_VERSION,
    UnknownKeyId: RejectReason.UNKNOWN_KEY,
    AuthenticationFailed: RejectReason.AUTH_FAILED,
    Replay: RejectReason.REPLAY,
    Stale: RejectReason.STALE,
    Malformed: RejectReason.MALFORMED,
}


class Rejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason, self.detail = reason, detail


def process(message: InboundMessage, *, now: datetime) -> None:
    try:
        payload = _whole_payload(message, now=now)
        if payload is None:
            return  # a part of a concatenated message still waiting for the others
        _verify_and_store(message, payload, now=now)
    except Rejected as rejection:
        _reject(message, rejection.reason, rejection.detail, now=now)


def _whole_payload(message: InboundMessage, *, now: datetime) -> bytes | None:
    if not rules.is_binary(message.coding):
        raise Rejected(RejectReason.NOT_BINARY, f"coding {message.coding}")
    udh = bytes(message.udh)
    if not udh:
        return bytes(message.payload)
    try:
        _, concat, _ = parse_udh(udh)
    except PduError as exc:
        raise Rejected(RejectReason.MALFORMED, f"UDH: {exc}") from None
    if concat is None:
        return bytes(message.payload)
    if not 1 <= concat.seq <= concat.total or concat.total > MAX_CONCAT_PARTS:
        raise Rejected(RejectReason.TOO_MANY_PARTS, f"part {concat.seq} of {concat.total}")
    message.status = InboundStatus.PART
    with transaction.atomic():
        InboundMessage.objects.filter(pk=message.pk).update(
            status=InboundStatus.PART,
            concat_ref=concat.ref,
            concat_total=concat.total,
            concat_seq=concat.seq,
        )
        # Parts of one message processed at once by two drains: the second waits here until
        # the first has committed, then sees its part (without this, each could see only
        # itself, and both would wait for the other until they expire).
        advisory_xact_lock(f"concat:{message.sender}:{concat.ref}:{concat.total}")
        parts = list(
            InboundMessage.objects.select_for_update()
            .filter(
                sender=message.sender,
                concat_ref=concat.ref,
                concat_total=concat.total,
                status=InboundStatus.PART,
                received_at__gte=now - CONCAT_TIMEOUT,
            )
            .order_by("concat_seq", "pk")
        )
        by_seq = {p.concat_seq: p for p in parts}
        if set(by_seq) != set(range(1, concat.total + 1)):
            return None
        others = [p.pk for p in by_seq.values() if p.pk != message.pk]
        InboundMessage.objects.filter(pk__in=others).update(
            status=InboundStatus.ACCEPTED, detail=f"combined into #{message.pk}", processed_at=now
        )
        message.status = InboundStatus.RECEIVED
        InboundMessage.objects.filter(pk=message.pk).update(status=InboundStatus.RECEIVED)
        return b"".join(bytes(by_seq[i].payload) for i in range(1, concat.total + 1))


def _meter_for(message: InboundMessage) -> Meter:
    sim = (
        Sim.objects.select_related("meter").filter(msisdn=normalise_msisdn(message.sender)).first()
    )
    if sim is None:
        raise Rejected(RejectReason.UNKNOWN_SENDER)
    meter = sim.meter
    if meter is None:
        raise Rejected(RejectReason.NO_METER)
    reason = rules.refusal(meter.status)
    if reason is None:
        return meter
    if meter.status == MeterStatus.SUSPENDED:
        # Counted for staff deciding whether to reactivate it.
        Meter.objects.filter(pk=meter.pk).update(
            rejected_while_suspended=F("rejected_while_suspended") + 1
        )
    raise Rejected(reason)


def _verify_and_store(message: InboundMessage, payload: bytes, *, now: datetime) -> None:
    try:
        parse_header(payload)  # length, version: cheap checks before any key is touched
    except ProtocolError as exc:
        raise Rejected(_PROTOCOL_REASONS[type(exc)], str(exc)) from None
    message.meter = meter = _meter_for(message)

    with transaction.atomic():
        # The drain holds this row already; a caller that does not (a test calling `process`)
        # might race another: whoever locks it second finds it done and leaves it alone.
        locked = InboundMessage.objects.select_for_update().filter(pk=message.pk).first()
        if locked is None or locked.status != InboundStatus.RECEIVED:
            return
        # Locking the meter's usable keys serialises everything done for this meter below.
        # In key-id order, as the batches lock them, so the two paths cannot deadlock.
        keys = {
            k.key_id: k
            for k in usable_keys(meter)
            .select_for_update()
            .select_related("meter")
            .order_by("key_id")
        }

        def lookup(key_id: int) -> ProtocolKeyState | None:
            key = keys.get(key_id)
            if key is None:
                return None
            window = rules.window_of(key)
            try:
                session = session_keys(key)
            except KeyStoreLocked:
                raise  # this process was not given the private KEK: a deployment error, retry
            except KeyStoreError as exc:
                raise Rejected(RejectReason.KEY_UNUSABLE, str(exc)) from None
            return ProtocolKeyState(keys=session, window=window)

        try:
            opened = decode_uplink(payload, lookup)
        except ProtocolError as exc:
            raise Rejected(
                _PROTOCOL_REASONS.get(type(exc), RejectReason.MALFORMED), str(exc)
            ) from None

        key = keys[opened.header.key_id]
        key.uplink_highest, bitmap = opened.window.to_tuple()
        key.uplink_bitmap = rules.bitmap_to_db(bitmap)
        key.save(update_fields=["uplink_highest", "uplink_bitmap"])
        if key.state == KeyState.PENDING:
            key_used(meter, key.key_id, at=now)
        message.key_id, message.counter = key.key_id, opened.header.counter
        message.status, message.processed_at = InboundStatus.ACCEPTED, now
        # Read under the lock: another message of this meter may have moved them meanwhile.
        meter.acked_through_hour, last_heard = Meter.objects.values_list(
            "acked_through_hour", "last_message_at"
        ).get(pk=meter.pk)

        body = opened.message
        handle = _HANDLERS.get(body.TYPE)
        if handle is None:  # pragma: no cover - decode_uplink returns only uplink types
            raise Rejected(RejectReason.MALFORMED, f"unexpected {type(body).__name__}")
        answer = handle(message, meter, body, now=now)
        Meter.objects.filter(pk=meter.pk).update(
            acked_through_hour=meter.acked_through_hour, last_message_at=now
        )
        if answer:
            # Under the key a downlink goes now: after a completed key agreement the new one,
            # so the meter learns the server holds it too.
            due = rules.AckDue(meter, downlink_key(meter), meter.sim.msisdn, opened.header.counter)
            rules.queue_acks([due], now=now)
        if rules.silent_before(last_heard, now=now):
            alerts.meter_heard(meter, now=now)


_MESSAGE_FIELDS = [
    "status",
    "processed_at",
    "meter",
    "key_id",
    "counter",
    "first_hour",
    "last_hour",
]


def _handle_report(message: InboundMessage, meter: Meter, report: Report, *, now: datetime) -> bool:
    _store_report(message, meter, report, now=now)
    message.save(update_fields=_MESSAGE_FIELDS)
    marks = rules.high_water_marks({meter.pk: meter.acked_through_hour})
    meter.acked_through_hour = marks[meter.pk]
    return rules.wants_ack(report)


def _handle_device_info(
    message: InboundMessage, meter: Meter, info: DeviceInfo, *, now: datetime
) -> bool:
    # Not acked on its own: the ack of the batch it precedes confirms it (protocol 6.5).
    message.save(update_fields=_MESSAGE_FIELDS)
    register_device_info(
        meter, signing_public=info.signing_public, software_version=info.software_version, now=now
    )
    return False


def _handle_rekey_accept(
    message: InboundMessage, meter: Meter, accept: RekeyAccept, *, now: datetime
) -> bool:
    message.save(update_fields=_MESSAGE_FIELDS)
    # Answered (under the new key) once the agreement completes.
    return complete_rekey(meter, accept, now=now) is not None


# What each uplink message type does once verified; True: it is answered with an ack.
_HANDLERS: dict[MessageType, Callable[..., bool]] = {
    MessageType.REPORT: _handle_report,
    MessageType.DEVICE_INFO: _handle_device_info,
    MessageType.REKEY_ACCEPT: _handle_rekey_accept,
}


def _store_report(message: InboundMessage, meter: Meter, report: Report, *, now: datetime) -> None:
    if rules.from_the_future(report, now=now):
        raise Rejected(RejectReason.IMPLAUSIBLE, "reading from the future")
    store_readings(meter.pk, [(r.hour, r.wh) for r in report.readings], received_at=now)
    message.first_hour, message.last_hour = rules.hour_range(report)
    MeterEvent.objects.bulk_create(
        [
            MeterEvent(
                meter=meter,
                kind=event.kind.name.lower(),
                occurred_at=datetime.fromtimestamp(event.time, tz=UTC),
                arg=event.arg,
                received_at=now,
                inbound_message_id=message.pk,
            )
            for event in report.events
        ],
        ignore_conflicts=True,
    )
    if report.events:
        alerts.meter_events(meter, [e.kind.name.lower() for e in report.events], now=now)


def _reject(message: InboundMessage, reason: str, detail: str, *, now: datetime) -> None:
    message.status, message.reason, message.detail = InboundStatus.REJECTED, reason, detail[:255]
    message.processed_at = now
    # Never turns a message another attempt has accepted into a rejection.
    InboundMessage.objects.filter(
        pk=message.pk, status__in=(InboundStatus.RECEIVED, InboundStatus.PART)
    ).update(
        status=message.status,
        reason=reason,
        detail=message.detail,
        processed_at=now,
        meter=message.meter,
    )
    logger.warning("rejected SMS #%s from %s: %s %s", message.pk, message.sender, reason, detail)
    record(
        "sms.rejected",
        actor="smsgateway",
        target=f"sms:{message.pk} from {message.sender}",
        outcome=Outcome.DENIED,
        details={"reason": reason, "detail": detail[:200]},
    )
    if message.meter is not None and reason in settings.SMS_AUTH_FAILURE_REASONS:
        alerts.authentication_failure(message.meter, now=now)
    if message.meter is not None and reason == RejectReason.STALE:
        # Stale is decided after the tag verified: the meter itself sent an old counter.
        alerts.counter_behind_window(message.meter, now=now, detail=detail)


def expire_parts(*, now: datetime) -> int:
    """Parts whose siblings never came within the timeout are rejected as incomplete."""
    expired = list(
        InboundMessage.objects.filter(
            status=InboundStatus.PART, received_at__lt=now - CONCAT_TIMEOUT
        )[:1000]
    )
    for part in expired:
        _reject(
            part, RejectReason.INCOMPLETE, f"part {part.concat_seq} of {part.concat_total}", now=now
        )
    return len(expired)
