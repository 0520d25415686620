"""Sealing downlinks and writing them to the outbox, one or many set-based, with the daily
cap (S12); sending is queued when the caller's transaction commits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings

from audit.models import Outcome
from audit.services import record
from devices.models import Meter, MeterKey
from devices.selectors import downlink_key, session_keys
from meteragent.protocol import Message, encode_downlink
from utility.pg import array_cursor

from ..models import OutboundMessage, OutboundStatus
from .sending import send_on_commit

logger = logging.getLogger("smsgateway")


class Downlink(NamedTuple):
    """One message for a meter, to be sealed under `key`."""

    meter: Meter
    key: MeterKey
    msisdn: str
    message: Message
    kind: str


def queue_downlink(
    meter: Meter, message: Message, *, kind: str, now: datetime, key: MeterKey | None = None
) -> OutboundMessage:
    """Seal `message` under the meter's downlink key (or `key`) and put it in the outbox, as
    `queue_many` does."""
    key = key or downlink_key(meter)
    if key is None:
        raise ValueError(f"meter {meter} has no usable key")
    (outbound_id,) = queue_many([Downlink(meter, key, meter.sim.msisdn, message, kind)], now=now)
    return OutboundMessage.objects.get(pk=outbound_id)


def queue_many(
    downlinks: list[Downlink],
    *,
    now: datetime,
    counters: Mapping[int, Sequence[int]] | None = None,
) -> list[int]:
    """Seal each downlink with the next counter of its key and write them all to the outbox in
    one statement; those beyond their meter's daily cap are held (CAPPED), alerted and audited.
    The send task is queued when the surrounding transaction commits. Returns the rows' ids.

    `counters` (key pk → fresh downlink counters, `reserved_counters`) are those the caller
    already took for these downlinks in its own update of the keys; without it they are
    reserved here."""
    if not downlinks:
        return []
    if counters is None:
        counters = reserve_downlink_counters(Counter(d.key.pk for d in downlinks))
    counters = {pk: list(taken) for pk, taken in counters.items()}
    counted = sent_today({d.meter.pk for d in downlinks}, now=now)
    statuses, counters_used, payloads = [], [], []
    for downlink in downlinks:
        counter = counters[downlink.key.pk].pop(0)
        held = counted[downlink.meter.pk] >= settings.SMS_OUTBOUND_DAILY_CAP
        if not held:
            counted[downlink.meter.pk] += 1
        statuses.append(OutboundStatus.CAPPED.value if held else OutboundStatus.PENDING.value)
        counters_used.append(counter)
        payloads.append(
            encode_downlink(downlink.message, keys=session_keys(downlink.key), counter=counter)
        )
    with array_cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {OutboundMessage._meta.db_table}
                    (meter_id, msisdn, kind, payload, key_id, counter, status, attempts,
                     created_at, next_attempt_at, gateway_ref, last_error)
                SELECT m, n, kd, p, k, c, s, 0, %s, %s, '', ''
                FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::bytea[], %b::bigint[],
                            %b::bigint[], %b::text[]) WITH ORDINALITY AS v(m, n, kd, p, k, c, s, i)
                ORDER BY i
                RETURNING id""",  # noqa: S608 - the model's table
            [
                now,
                now,
                [d.meter.pk for d in downlinks],
                [d.msisdn for d in downlinks],
                [str(d.kind) for d in downlinks],
                payloads,
                [d.key.key_id for d in downlinks],
                counters_used,
                statuses,
            ],
        )
        ids = [row[0] for row in cursor.fetchall()]
    pending = []
    for outbound_id, status, downlink in zip(ids, statuses, downlinks, strict=True):
        if status == OutboundStatus.CAPPED:
            _held(downlink)
        else:
            pending.append(outbound_id)
    send_on_commit(pending)
    return ids


def _held(downlink: Downlink) -> None:
    logger.warning("outbound cap reached for meter %s; %s held", downlink.meter, downlink.kind)
    record(
        "cap.exceeded",
        actor="smsgateway",
        target=f"meter:{downlink.meter.number}",
        outcome=Outcome.ALERT,
        details={"cap": "sms_outbound_daily", "limit": settings.SMS_OUTBOUND_DAILY_CAP},
    )


def sent_today(meter_ids: Iterable[int], *, now: datetime) -> Counter[int]:
    """Outbound SMS per meter in the last 24 hours that count towards the daily cap (S12):
    every one but those the cap held back."""
    with array_cursor() as cursor:
        cursor.execute(
            f"""SELECT meter_id, count(*) FROM {OutboundMessage._meta.db_table}
                WHERE meter_id = ANY(%b) AND created_at >= %b AND status <> %b
                GROUP BY meter_id""",  # noqa: S608 - the model's table
            [sorted(set(meter_ids)), now - timedelta(days=1), OutboundStatus.CAPPED.value],
        )
        return Counter(dict(cursor.fetchall()))


def reserve_downlink_counters(needed: Counter[int]) -> dict[int, list[int]]:
    """Take `needed[key pk]` fresh downlink counters of each key in one statement (the update
    takes the keys' row locks, in one order); they are never handed out again (the increment
    is committed with the frames or not at all)."""
    key_pks = sorted(needed)
    with array_cursor() as cursor:
        cursor.execute(
            f"""UPDATE {MeterKey._meta.db_table} k
                SET downlink_counter = k.downlink_counter + v.n
                FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, n)
                WHERE k.id = v.id
                RETURNING k.id, k.downlink_counter""",  # noqa: S608 - the model's table
            [key_pks, [needed[pk] for pk in key_pks]],
        )
        return reserved_counters(cursor.fetchall(), needed)


def reserved_counters(
    rows: Iterable[tuple[int, int]], needed: Mapping[int, int]
) -> dict[int, list[int]]:
    """The counters taken by an update that added `needed[pk]` to each key's downlink counter
    and returned (pk, the new value): the values it moved past, in order."""
    return {pk: list(range(last - needed.get(pk, 0) + 1, last + 1)) for pk, last in rows}
