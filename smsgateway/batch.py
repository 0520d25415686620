"""Processing stored inbound messages in batches, so ingest keeps up with the gateway.

The common case (a report without events, in one SMS, sealed under the active key of an
active meter) is verified message by message exactly as in `ingest`, and then stored for the
whole batch in a handful of set-based statements: readings, replay windows, message states,
high-water marks and acks, instead of some twenty statements per message. Everything else (a
rejection, a part of a concatenated SMS, events, device information, key agreement, a pending
key) is handed back to the one-message path, `ingest.process`, which holds the whole rule
set; a meter's later messages in the batch are handed back with it, so within a batch each
meter's messages are processed in the order they arrived (across concurrent drains the replay
window accepts them in any order, and the high-water mark only counts what is stored). The
acks of one batch all carry the mark reached after the whole batch.

The batch's transaction holds its messages (SKIP LOCKED: concurrent drains take different
ones) and the keys of their meters (locked in one order, so drains never deadlock).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction

from devices.identifiers import normalise_msisdn
from devices.keystore import KeyStoreError, KeyStoreLocked
from devices.models import KeyState, Meter, MeterKey, MeterStatus, Sim
from devices.selectors import session_keys
from meteragent.protocol import (
    Ack,
    ProtocolError,
    ReplayWindow,
    Report,
    decode_uplink,
    encode_downlink,
)
from meteragent.protocol import KeyState as ProtocolKeyState
from readings.services import datetime_to_hour, store_many_readings
from utility.pg import array_cursor

from . import acks, alerts
from .models import (
    InboundMessage,
    InboundStatus,
    OutboundKind,
    OutboundMessage,
    OutboundStatus,
)

logger = logging.getLogger("smsgateway")

CODING_8BIT = 1
_NOT_RECEIVING = (MeterStatus.REGISTERED, MeterStatus.SUSPENDED, MeterStatus.DECOMMISSIONED)


def latest_plausible_hour(now: datetime) -> int:
    """A report with a reading after this hour is from the future: rejected as implausible."""
    return datetime_to_hour(now) + 1


@dataclass(frozen=True)
class Claimed:
    taken: int  # messages claimed by the batch
    handed_back: list[int]  # ids left for the one-message path, in arrival order


class _Waiting(NamedTuple):
    pk: int
    sender: str
    udh: bytes
    coding: int | None
    payload: bytes


@dataclass(frozen=True)
class _Accepted:
    message_id: int
    meter_id: int
    key: MeterKey
    counter: int
    first_hour: int | None
    last_hour: int | None
    wants_ack: bool


def process_batch(*, limit: int, now: datetime, skip: Collection[int] = ()) -> Claimed:
    """Claim up to `limit` waiting messages (but those in `skip`), oldest first; process in
    this transaction those the batch path takes, and return the others' ids (their rows are
    unlocked on return). If the batch as a whole fails, every message is handed back."""
    with transaction.atomic():
        messages = [
            _Waiting(*row)
            for row in InboundMessage.objects.select_for_update(skip_locked=True)
            .filter(status=InboundStatus.RECEIVED)
            .exclude(pk__in=list(skip))
            .order_by("pk")  # arrival order, on the `inbound_waiting` index
            .values_list("pk", "sender", "udh", "coding", "payload")[:limit]
        ]
        if not messages:
            return Claimed(len(messages), [m.pk for m in messages])
        try:
            with transaction.atomic():  # a savepoint: a failure here undoes only the batch
                handed_back = _process(messages, now=now)
        except KeyStoreLocked:
            raise
        except Exception:
            logger.exception("a batch of %d failed; each takes the one-message path", len(messages))
            handed_back = [m.pk for m in messages]
    return Claimed(len(messages), handed_back)


def _process(messages: list[_Waiting], *, now: datetime) -> list[int]:
    msisdns = {m.pk: normalise_msisdn(m.sender) for m in messages}
    sims = dict(
        Sim.objects.filter(msisdn__in=set(msisdns.values()), meter__isnull=False).values_list(
            "msisdn", "meter_id"
        )
    )
    meter_ids = sorted(set(sims.values()))
    # Lock every usable key of these meters, in one order: this serialises the batch with
    # every other writer of these meters' windows, readings and marks.
    keys = list(
        MeterKey.objects.select_for_update()
        .filter(meter_id__in=meter_ids, state__in=(KeyState.ACTIVE, KeyState.PENDING))
        .order_by("meter_id", "key_id")
    )
    # Read under those locks: another drain may have moved them meanwhile, and a key agreement
    # completed while we waited may have added a pending key the locking read did not return.
    slow_meters = set(
        MeterKey.objects.filter(meter_id__in=meter_ids, state=KeyState.PENDING).values_list(
            "meter_id", flat=True
        )
    )
    meters = {
        m.pk: m
        for m in Meter.objects.filter(pk__in=meter_ids).only(
            "pk", "number", "status", "acked_through_hour", "last_message_at"
        )
    }
    active: dict[tuple[int, int], MeterKey] = {}
    for key in keys:
        if key.state == KeyState.ACTIVE:
            key.meter = meters[key.meter_id]
            active[(key.meter_id, key.key_id)] = key
    windows = {
        key.pk: ReplayWindow(key.uplink_highest, bitmap_from_db(key.uplink_bitmap))
        for key in active.values()
    }

    latest_allowed = latest_plausible_hour(now)
    accepted: list[_Accepted] = []
    readings: list[tuple[int, int, int]] = []
    handed_back: list[int] = []
    for message in messages:
        meter_id = sims.get(msisdns[message.pk])
        meter = meters.get(meter_id)
        opened = None
        if meter is not None and meter_id not in slow_meters:
            opened = _open(message, meter, active, windows, latest_allowed)
        if opened is None:
            handed_back.append(message.pk)
            if meter_id is not None:
                slow_meters.add(meter_id)
            continue
        key, counter, window, report = opened
        windows[key.pk] = window
        hours = [r.hour for r in report.readings]
        accepted.append(
            _Accepted(
                message.pk,
                meter_id,
                key,
                counter,
                hours[0] if hours else None,
                hours[-1] if hours else None,
                wants_ack=report.remaining == 0,
            )
        )
        readings.extend((meter_id, r.hour, r.wh) for r in report.readings)

    if accepted:
        _store(accepted, readings, windows, meters, sims, msisdns, now=now)
    logger.info("batch: %d accepted, %d handed back", len(accepted), len(handed_back))
    return handed_back


def _open(
    message: _Waiting,
    meter: Meter,
    active: dict[tuple[int, int], MeterKey],
    windows: dict[int, ReplayWindow],
    latest_allowed: int,
) -> tuple[MeterKey, int, ReplayWindow, Report] | None:
    """Verify and decode a message the batch path can take; None for any other."""
    if meter.status in _NOT_RECEIVING or message.coding not in (None, CODING_8BIT):
        return None
    if bytes(message.udh):
        return None
    used: list[MeterKey] = []

    def lookup(key_id: int) -> ProtocolKeyState | None:
        key = active.get((meter.pk, key_id))
        if key is None:
            return None
        used.append(key)
        return ProtocolKeyState(keys=session_keys(key), window=windows[key.pk])

    try:
        opened = decode_uplink(bytes(message.payload), lookup)
    except KeyStoreLocked:
        raise  # this process was not given the private KEK: a deployment error, retry
    except (ProtocolError, KeyStoreError):
        return None  # the one-message path rejects it, with its reason
    report = opened.message
    if not isinstance(report, Report) or report.events:
        return None
    if any(r.hour > latest_allowed for r in report.readings):
        return None
    return used[-1], opened.header.counter, opened.window, report


def _store(
    accepted: list[_Accepted],
    readings: list[tuple[int, int, int]],
    windows: dict[int, ReplayWindow],
    meters: dict[int, Meter],
    sims: dict[str, int],
    msisdns: dict[int, str],
    *,
    now: datetime,
) -> None:
    store_many_readings(readings, received_at=now)
    inbound = InboundMessage._meta.db_table
    key_table = MeterKey._meta.db_table
    meter_table = Meter._meta.db_table
    with array_cursor() as cursor:
        cursor.execute(
            f"""UPDATE {inbound} m SET status = %s, processed_at = %s, meter_id = v.meter_id,
                    key_id = v.key_id, counter = v.counter,
                    first_hour = v.first_hour, last_hour = v.last_hour
                FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[],
                            %b::bigint[], %b::bigint[])
                     AS v(id, meter_id, key_id, counter, first_hour, last_hour)
                WHERE m.id = v.id""",  # noqa: S608 - table names come from the models
            [
                InboundStatus.ACCEPTED.value,
                now,
                [a.message_id for a in accepted],
                [a.meter_id for a in accepted],
                [a.key.key_id for a in accepted],
                [a.counter for a in accepted],
                [a.first_hour for a in accepted],
                [a.last_hour for a in accepted],
            ],
        )
        used_keys = sorted({a.key.pk for a in accepted})
        highest, bitmaps = [], []
        for pk in used_keys:
            top, bitmap = windows[pk].to_tuple()
            highest.append(top)
            bitmaps.append(bitmap_to_db(bitmap))
        cursor.execute(
            f"""UPDATE {key_table} k SET uplink_highest = v.highest, uplink_bitmap = v.bitmap
                FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[]) AS v(id, highest, bitmap)
                WHERE k.id = v.id""",  # noqa: S608
            [used_keys, highest, bitmaps],
        )

        marks = _high_water_marks({a.meter_id for a in accepted}, meters, cursor)
        meter_ids = sorted(marks)
        cursor.execute(
            f"""UPDATE {meter_table} m SET acked_through_hour = v.mark, last_message_at = %s
                FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, mark)
                WHERE m.id = v.id""",  # noqa: S608
            [now, meter_ids, [marks[pk] for pk in meter_ids]],
        )
    silence = timedelta(hours=settings.METER_SILENCE_HOURS)
    alerts.meters_heard(
        [
            pk
            for pk in meter_ids
            if meters[pk].last_message_at is None or now - meters[pk].last_message_at > silence
        ],
        now=now,
    )
    for pk in meter_ids:
        meters[pk].acked_through_hour, meters[pk].last_message_at = marks[pk], now

    msisdn_of = {meter_id: msisdn for msisdn, meter_id in sims.items()}
    _queue_acks([a for a in accepted if a.wants_ack], meters, msisdn_of, now=now)


def _high_water_marks(meter_ids: set[int], meters: dict[int, Meter], cursor) -> dict[int, int]:
    """Each meter's mark extended over its accepted reports (as `acks.high_water_mark`, for
    all the batch's meters in one query); read after this batch's messages were marked."""
    ids = sorted(meter_ids)
    cursor.execute(
        f"""SELECT m.meter_id, m.first_hour, m.last_hour
            FROM {InboundMessage._meta.db_table} m
            JOIN unnest(%b::bigint[], %b::bigint[]) AS v(meter_id, mark)
              ON m.meter_id = v.meter_id
            WHERE m.status = %s AND m.last_hour IS NOT NULL
              AND m.last_hour > coalesce(v.mark, -1)
            ORDER BY m.meter_id, m.first_hour""",  # noqa: S608
        [ids, [meters[pk].acked_through_hour for pk in ids], InboundStatus.ACCEPTED.value],
    )
    ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for meter_id, first, last in cursor.fetchall():
        ranges[meter_id].append((first, last))
    return {pk: acks.extend_mark(meters[pk].acked_through_hour, ranges[pk]) for pk in ids}


def _queue_acks(
    wanted: list[_Accepted],
    meters: dict[int, Meter],
    msisdn_of: dict[int, str],
    *,
    now: datetime,
) -> None:
    """Seal an ack for every report that ended a batch, under the key it came with, and put
    them in the outbox; a meter at its daily outbound cap goes through `acks.queue_ack`, which
    holds the ack and raises the alert (S12)."""
    if not wanted:
        return
    sent_today = acks.sent_today((a.meter_id for a in wanted), now=now)
    to_seal: list[_Accepted] = []
    over_cap: list[_Accepted] = []
    for item in wanted:
        if sent_today[item.meter_id] >= settings.SMS_OUTBOUND_DAILY_CAP:
            over_cap.append(item)
        else:
            sent_today[item.meter_id] += 1
            to_seal.append(item)
    if to_seal:
        _seal_acks(to_seal, meters, msisdn_of, now=now)
    # After the batch's own acks are in the outbox, so the cap counts them: held and alerted.
    for item in over_cap:
        acks.queue_ack(meters[item.meter_id], answers_counter=item.counter, now=now)


def _seal_acks(
    to_seal: list[_Accepted],
    meters: dict[int, Meter],
    msisdn_of: dict[int, str],
    *,
    now: datetime,
) -> None:
    """Seal the acks with fresh downlink counters and put them in the outbox, sent once the
    batch commits."""
    counters = _reserve_downlink_counters(Counter(a.key.pk for a in to_seal))
    meter_ids, msisdns, payloads, key_ids, frame_counters = [], [], [], [], []
    for item in to_seal:
        counter = counters[item.key.pk].pop(0)
        ack = Ack(
            answers_counter=item.counter,
            acked_through_hour=meters[item.meter_id].acked_through_hour,
            server_time=int(now.timestamp()),
        )
        meter_ids.append(item.meter_id)
        msisdns.append(msisdn_of[item.meter_id])
        payloads.append(encode_downlink(ack, keys=session_keys(item.key), counter=counter))
        key_ids.append(item.key.key_id)
        frame_counters.append(counter)
    with array_cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {OutboundMessage._meta.db_table}
                    (meter_id, msisdn, kind, payload, key_id, counter, status, attempts,
                     created_at, next_attempt_at, gateway_ref, last_error)
                SELECT m, n, %s, p, k, c, %s, 0, %s, %s, '', ''
                FROM unnest(%b::bigint[], %b::text[], %b::bytea[], %b::bigint[], %b::bigint[])
                     AS v(m, n, p, k, c)
                RETURNING id""",  # noqa: S608
            [
                OutboundKind.ACK.value,
                OutboundStatus.PENDING.value,
                now,
                now,
                meter_ids,
                msisdns,
                payloads,
                key_ids,
                frame_counters,
            ],
        )
        ids = [row[0] for row in cursor.fetchall()]
    from .tasks import send_outbound_many

    transaction.on_commit(lambda: send_outbound_many.delay(outbound_ids=ids))


def _reserve_downlink_counters(needed: Counter[int]) -> dict[int, list[int]]:
    """Take `needed[key pk]` fresh downlink counters of each key in one statement; they are
    never handed out again (the increment is committed with the frames or not at all)."""
    key_pks = sorted(needed)
    with array_cursor() as cursor:
        cursor.execute(
            f"""UPDATE {MeterKey._meta.db_table} k
                SET downlink_counter = k.downlink_counter + v.n
                FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, n)
                WHERE k.id = v.id
                RETURNING k.id, k.downlink_counter""",  # noqa: S608
            [key_pks, [needed[pk] for pk in key_pks]],
        )
        return {pk: list(range(last - needed[pk] + 1, last + 1)) for pk, last in cursor.fetchall()}


def bitmap_to_db(bitmap: int) -> int:
    """A 64-bit replay bitmap as PostgreSQL's signed bigint."""
    return bitmap - (1 << 64) if bitmap >= 1 << 63 else bitmap


def bitmap_from_db(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
