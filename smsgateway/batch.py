"""Processing stored inbound messages in batches, so ingest keeps up with the gateway.

The common case (a report without events, in one SMS, sealed under the active key of an
active meter) is verified message by message, and then stored for the whole batch in a
handful of set-based statements: readings, replay windows, message states, high-water marks
and acks, instead of some twenty statements per message. Both paths decide by the same rules
(`rules`). Everything else (a rejection, a part of a concatenated SMS, events, device
information, key agreement, a pending key) is handed back to the one-message path,
`ingest.process`, which has a reason for every rejection; a meter's later messages in the
batch are handed back with it, so within a batch each meter's messages are processed in the
order they arrived (across concurrent drains the replay window accepts them in any order, and
the high-water mark only counts what is stored). The acks of one batch all carry the mark
reached after the whole batch.

The batch's transaction holds its messages (SKIP LOCKED: concurrent drains take different
ones) and the keys of their meters (locked in one order, so drains never deadlock).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import connection, models, transaction

from devices.identifiers import normalise_msisdn
from devices.keystore import KeyStoreError, KeyStoreLocked
from devices.models import KeyState, Meter, MeterKey, Sim
from devices.selectors import session_keys
from meteragent.protocol import KeyState as ProtocolKeyState
from meteragent.protocol import (
    ProtocolError,
    ReplayWindow,
    Report,
    decode_uplink,
)
from readings.services import store_many_readings
from utility.pg import array_cursor

from . import alerts, rules
from .models import InboundMessage, InboundStatus
from .outbox import queue

logger = logging.getLogger("smsgateway")


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


def _in_model_order(model: type[models.Model], names: set[str]) -> list[str]:
    """Column names in the order `Model.from_db` takes their values (the model's)."""
    return [f.attname for f in model._meta.concrete_fields if f.attname in names]


# The columns the batch reads: its rows become model instances as a queryset's would (the
# other fields deferred), without a queryset's cost per row.
_KEY_FIELDS = _in_model_order(
    MeterKey,
    {"id", "meter_id", "key_id", "state", "wrapped_key", "kek_id"}
    | {"uplink_highest", "uplink_bitmap"},
)
_METER_FIELDS = _in_model_order(
    Meter, {"id", "number", "status", "acked_through_hour", "last_message_at"}
)


def _process(messages: list[_Waiting], *, now: datetime) -> list[int]:
    msisdns = {m.pk: normalise_msisdn(m.sender) for m in messages}
    # Whole columns as arrays, bound on the server: a batch's hundreds of ids cost one
    # parameter each, not one placeholder each (as Django's IN lists do).
    with array_cursor() as cursor:
        # Lock every usable key of these meters, in one order: this serialises the batch with
        # every other writer of these meters' windows, readings and marks.
        cursor.execute(
            f"""SELECT s.msisdn, {", ".join(f"k.{name}" for name in _KEY_FIELDS)}
                FROM {Sim._meta.db_table} s
                JOIN {MeterKey._meta.db_table} k ON k.meter_id = s.meter_id
                WHERE s.msisdn = ANY(%b) AND k.state = ANY(%b)
                ORDER BY k.meter_id, k.key_id
                FOR UPDATE OF k""",  # noqa: S608 - table names come from the models
            [sorted(set(msisdns.values())), [KeyState.ACTIVE.value, KeyState.PENDING.value]],
        )
        sims: dict[str, int] = {}
        keys: list[MeterKey] = []
        alias, meter_of_key = connection.alias, _KEY_FIELDS.index("meter_id")
        for msisdn, *values in cursor:
            sims[msisdn] = values[meter_of_key]
            keys.append(MeterKey.from_db(alias, _KEY_FIELDS, values))
        meter_ids = sorted(set(sims.values()))
        # Read under those locks: another drain may have moved them meanwhile, and a key
        # agreement completed while we waited may have added a pending key the locking read
        # did not return.
        cursor.execute(
            f"""SELECT {", ".join(f"m.{name}" for name in _METER_FIELDS)},
                       EXISTS (SELECT 1 FROM {MeterKey._meta.db_table} p
                               WHERE p.meter_id = m.id AND p.state = %b)
                FROM {Meter._meta.db_table} m WHERE m.id = ANY(%b)""",  # noqa: S608
            [KeyState.PENDING.value, meter_ids],
        )
        meters: dict[int, Meter] = {}
        slow_meters: set[int] = set()
        for *values, pending in cursor:
            meter = Meter.from_db(alias, _METER_FIELDS, values)
            meters[meter.pk] = meter
            if pending:
                slow_meters.add(meter.pk)
    active: dict[tuple[int, int], MeterKey] = {}
    for key in keys:
        if key.state == KeyState.ACTIVE:
            key.meter = meters[key.meter_id]
            active[(key.meter_id, key.key_id)] = key
    windows = {key.pk: rules.window_of(key) for key in active.values()}

    accepted: list[_Accepted] = []
    readings: list[tuple[int, int, int]] = []
    handed_back: list[int] = []
    for message in messages:
        meter_id = sims.get(msisdns[message.pk])
        meter = meters.get(meter_id)
        opened = None
        if meter is not None and meter_id not in slow_meters:
            opened = _open(message, meter, active, windows, now=now)
        if opened is None:
            handed_back.append(message.pk)
            if meter_id is not None:
                slow_meters.add(meter_id)
            continue
        key, counter, window, report = opened
        windows[key.pk] = window
        first_hour, last_hour = rules.hour_range(report)
        accepted.append(
            _Accepted(
                message.pk,
                meter_id,
                key,
                counter,
                first_hour,
                last_hour,
                wants_ack=rules.wants_ack(report),
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
    *,
    now: datetime,
) -> tuple[MeterKey, int, ReplayWindow, Report] | None:
    """Verify and decode a message the batch path can take; None for any other."""
    if rules.refusal(meter.status) is not None or not rules.is_binary(message.coding):
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
    if rules.from_the_future(report, now=now):
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
    stored_marks = {a.meter_id: meters[a.meter_id].acked_through_hour for a in accepted}
    # The reports accepted before this batch, past each meter's mark (a gap holds the mark
    # back; the meter then sends again hours already stored after it): no hour after the last
    # of them can have come by SMS, so those are copied in without a check.
    earlier = rules.accepted_ranges(stored_marks)
    store_many_readings(
        readings,
        received_at=now,
        stored_through=rules.last_hours_covered(stored_marks, earlier),
    )
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
        acks_due = Counter(a.key.pk for a in accepted if a.wants_ack)
        highest, bitmaps = [], []
        for pk in used_keys:
            top, bitmap = windows[pk].to_tuple()
            highest.append(top)
            bitmaps.append(rules.bitmap_to_db(bitmap))
        # One update of each key per batch: its replay window, and the downlink counters its
        # acks are sealed with below.
        cursor.execute(
            f"""UPDATE {key_table} k SET uplink_highest = v.highest, uplink_bitmap = v.bitmap,
                       downlink_counter = k.downlink_counter + v.acks
                FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])
                     AS v(id, highest, bitmap, acks)
                WHERE k.id = v.id
                RETURNING k.id, k.downlink_counter""",  # noqa: S608
            [used_keys, highest, bitmaps, [acks_due[pk] for pk in used_keys]],
        )
        ack_counters = queue.reserved_counters(cursor.fetchall(), acks_due)

        ranges = {pk: list(earlier[pk]) for pk in stored_marks}
        for a in accepted:
            ranges[a.meter_id].append((a.first_hour, a.last_hour))
        marks = rules.extend_marks(stored_marks, ranges)
        meter_ids = sorted(marks)
        cursor.execute(
            f"""UPDATE {meter_table} m SET acked_through_hour = v.mark, last_message_at = %s
                FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, mark)
                WHERE m.id = v.id""",  # noqa: S608
            [now, meter_ids, [marks[pk] for pk in meter_ids]],
        )
    alerts.meters_heard(
        [pk for pk in meter_ids if rules.silent_before(meters[pk].last_message_at, now=now)],
        now=now,
    )
    for pk in meter_ids:
        meters[pk].acked_through_hour, meters[pk].last_message_at = marks[pk], now

    msisdn_of = {meter_id: msisdn for msisdn, meter_id in sims.items()}
    rules.queue_acks(
        [
            rules.AckDue(meters[a.meter_id], a.key, msisdn_of[a.meter_id], a.counter)
            for a in accepted
            if a.wants_ack
        ],
        now=now,
        counters=ack_counters,
    )
