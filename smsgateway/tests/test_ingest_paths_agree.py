"""The batch path and the one-message path decide by the same rules: the same messages, good
and bad, fed through each leave the same rows behind (readings, marks, windows, message
states, acks in the outbox byte for byte, alerts, audit).

Each meter's reports here end in one ack: where a meter has several acked reports in one
batch, the batch's acks all carry the mark reached after the whole batch (`batch`), a later
one than the one-message path's first acks carry."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from devices.models import Meter, MeterAlert, MeterKey, MeterStatus
from meteragent.protocol import Event, EventKind
from readings.models import DailyReading, Reading, ReadingConflict
from readings.services import datetime_to_hour
from smsgateway import ingest
from smsgateway.acks import queue_ack
from smsgateway.adapters import InboundSms
from smsgateway.batch import process_batch
from smsgateway.models import InboundMessage, InboundStatus, OutboundMessage
from smsgateway.rawstore import store_raw

from .conftest import hours_back

pytestmark = pytest.mark.postgres


def _stored(sender: str, frame: bytes, n: int, *, now) -> int:
    sms = InboundSms("kannel", f"paths-{n}", sender, "+447700900000", frame, b"", 1, "t", None)
    message_id = store_raw(sms, now=now)
    assert message_id is not None
    return message_id


def _one_message_path(message_ids: list[int], *, now) -> None:
    for message_id in message_ids:
        with transaction.atomic():
            ingest.process(InboundMessage.objects.select_for_update().get(pk=message_id), now=now)


def _batch_path(message_ids: list[int], *, now) -> None:
    claimed = process_batch(limit=len(message_ids), now=now)
    assert claimed.taken == len(message_ids)
    assert len(claimed.handed_back) < len(message_ids)  # the batch took the common case
    for message_id in claimed.handed_back:  # as the drain does
        with transaction.atomic():
            message = InboundMessage.objects.select_for_update().get(pk=message_id)
            if message.status == InboundStatus.RECEIVED:
                ingest.process(message, now=now)


def _rows(message_ids: list[int], since_audit: int) -> dict[str, object]:
    number = dict(Meter.objects.values_list("pk", "number"))
    return {
        "readings": sorted(
            (number[m], h, wh) for m, h, wh in Reading.objects.values_list("meter", "hour", "wh")
        ),
        "daily": sorted(
            (number[r[0]], *r[1:])
            for r in DailyReading.objects.values_list("meter", "day", "last_hour", "last_wh")
        ),
        "conflicts": sorted(
            (number[r[0]], *r[1:])
            for r in ReadingConflict.objects.values_list(
                "meter", "hour", "stored_wh", "received_wh"
            )
        ),
        "messages": [
            (
                m.pk,
                m.status,
                m.reason,
                m.detail,
                m.meter_id and number[m.meter_id],
                m.key_id,
                m.counter,
                m.first_hour,
                m.last_hour,
            )
            for m in InboundMessage.objects.filter(pk__in=message_ids).order_by("pk")
        ],
        "meters": sorted(
            Meter.objects.values_list(
                "number", "acked_through_hour", "last_message_at", "rejected_while_suspended"
            )
        ),
        "keys": sorted(
            (number[k[0]], *k[1:])
            for k in MeterKey.objects.values_list(
                "meter", "key_id", "uplink_highest", "uplink_bitmap", "downlink_counter"
            )
        ),
        "outbox": sorted(
            (number[o[0]], *o[1:-1], bytes(o[-1]))
            for o in OutboundMessage.objects.values_list(
                "meter", "kind", "key_id", "counter", "status", "msisdn", "payload"
            )
        ),
        "alerts": sorted(
            (number[a[0]], *a[1:])
            for a in MeterAlert.objects.values_list("meter", "kind", "closed_at", "details")
        ),
        "audit": sorted(
            (e.action, e.target, e.outcome, sorted(e.details.items()))
            for e in AuditEvent.objects.filter(seq__gt=since_audit)
        ),
    }


def _through(path, message_ids: list[int], *, now) -> dict[str, object]:
    """Run `path` in a savepoint, take the rows, and undo it (the next path starts alike)."""
    since = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    savepoint = transaction.savepoint()
    try:
        path(message_ids, now=now)
        return _rows(message_ids, since)
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.mark.django_db
def test_both_paths_store_the_same_rows_for_good_and_bad_messages(test_meter, settings):
    settings.SMS_OUTBOUND_DAILY_CAP = 2
    now = timezone.now()
    this_hour = datetime_to_hour(now)
    two_frames, gap, overlap, replayed, future, retired, suspended, capped, quiet = (
        test_meter() for _ in range(9)
    )
    Meter.objects.filter(pk=retired.meter.pk).update(status=MeterStatus.DECOMMISSIONED)
    Meter.objects.filter(pk=suspended.meter.pk).update(status=MeterStatus.SUSPENDED)
    day = hours_back(12)
    replayed_frame = replayed.report(hours_back(3))
    frames = [
        # a report in two frames: only the last is acked, with the mark over both
        (two_frames, two_frames.report(day[:6], remaining=1)),
        (two_frames, two_frames.report(day[6:])),
        # a gap: the mark stops before it
        (gap, gap.report(day[:3], remaining=1)),
        (gap, gap.report(day[6:])),
        # the same hours again (one value changed): stored once, the change a conflict
        (overlap, overlap.report(day[:4], remaining=2)),
        (overlap, overlap.report([*day[2:4], (day[4][0], day[4][1] + 7)], remaining=1)),
        (overlap, overlap.report([(day[3][0], day[3][1] + 1)])),
        # the same frame twice: the second is a replay
        (replayed, replayed_frame),
        (replayed, replayed_frame),
        # a reading from the future, then a good one from the same meter
        (future, future.report([(this_hour + 5, 9_000_000)])),
        (future, future.report(hours_back(2))),
        # meters that may not report, and a stranger
        (retired, retired.report(hours_back(2))),
        (suspended, suspended.report(hours_back(2))),
        (None, quiet.report(hours_back(1))),
        # a meter at its daily outbound cap: its ack is held
        (capped, capped.report(day[:2])),
        # a heartbeat, and a report with events (the one-message path in both)
        (quiet, quiet.report([])),
        (
            quiet,
            quiet.report(hours_back(1), [Event(EventKind.TAMPER, datetime_to_hour(now) * 3600, 1)]),
        ),
    ]
    for n in range(settings.SMS_OUTBOUND_DAILY_CAP):
        queue_ack(capped.meter, answers_counter=n + 1, now=now - timedelta(hours=1))
    message_ids = [
        _stored(sender.msisdn if sender else "+447700999999", frame, n, now=now)
        for n, (sender, frame) in enumerate(frames)
    ]
    later = now + timedelta(seconds=30)

    one_by_one = _through(_one_message_path, message_ids, now=later)
    batched = _through(_batch_path, message_ids, now=later)

    for table in one_by_one:
        assert batched[table] == one_by_one[table], table
    # The cases the test means to cover did happen.
    outcomes = [(status, reason) for _, status, reason, *_ in one_by_one["messages"]]
    assert {reason for _, reason in outcomes} >= {
        "replay",
        "implausible",
        "meter_decommissioned",
        "meter_suspended",
        "unknown_sender",
    }
    assert sum(1 for o in one_by_one["outbox"] if o[4] == "capped") == 1
    assert one_by_one["conflicts"]
