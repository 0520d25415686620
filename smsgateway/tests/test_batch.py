"""Processing stored messages in batches: the common case set-based, everything else handed back
to the one-message path, in order, with the same outcome as one message at a time."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from devices.models import Meter, MeterKey
from meteragent.protocol import Event, EventKind
from readings.models import Reading, ReadingConflict
from readings.services import datetime_to_hour
from smsgateway import rules
from smsgateway.adapters import InboundSms
from smsgateway.batch import process_batch
from smsgateway.drain import drain
from smsgateway.models import InboundMessage, InboundStatus, OutboundMessage
from smsgateway.rawstore import store_raw
from utility.pg import array_cursor

from .conftest import hours_back

pytestmark = pytest.mark.postgres

_ids = iter(range(1, 1_000_000))


def stored(sender: str, frame: bytes) -> int:
    """Store a message as the webhook does, without processing it."""
    sms = InboundSms(
        "kannel", f"batch-{next(_ids)}", sender, "+447700900000", frame, b"", 1, "t", None
    )
    message_id = store_raw(sms, now=timezone.now())
    assert message_id is not None
    return message_id


def outcome_of(message_id: int) -> str:
    message = InboundMessage.objects.get(pk=message_id)
    return f"{message.status} {message.reason}".strip()


@pytest.mark.django_db
def test_a_mixed_batch_takes_the_common_case_and_hands_back_the_rest_in_order(test_meter):
    a, b, c = test_meter(), test_meter(), test_meter()
    day = hours_back(12)
    a_first_frame = a.report(day[:6])
    tamper = Event(EventKind.TAMPER, datetime_to_hour(timezone.now()) * 3600, 1)
    forged = bytearray(c.report(hours_back(2)))
    forged[-1] ^= 1
    future_hour = datetime_to_hour(timezone.now()) + 5
    ids = {
        "a1": stored(a.msisdn, a_first_frame),
        "a2": stored(a.msisdn, a.report(day[6:])),
        "b_events": stored(b.msisdn, b.report(hours_back(3), [tamper])),
        "b_after": stored(b.msisdn, b.report(hours_back(4))),
        "c_forged": stored(c.msisdn, bytes(forged)),
        "a_replay": stored(a.msisdn, a_first_frame),
        "stranger": stored("+447700999999", a.report(hours_back(1))),
        "a_future": stored(a.msisdn, a.report([(future_hour, 5_000_000)])),
    }

    claimed = process_batch(limit=100, now=timezone.now())
    assert claimed.taken == len(ids)
    # b's second report waits behind the one with events: each meter's order is kept.
    order = ["b_events", "b_after", "c_forged", "a_replay", "stranger", "a_future"]
    assert claimed.handed_back == [ids[name] for name in order]
    assert (outcome_of(ids["a1"]), outcome_of(ids["a2"])) == ("accepted", "accepted")
    assert Reading.objects.filter(meter=a.meter).count() == 12

    assert drain(limit=100).processed == len(
        order
    )  # the one-message path finishes what was handed back
    assert {name: outcome_of(pk) for name, pk in ids.items()} == {
        "a1": "accepted",
        "a2": "accepted",
        "b_events": "accepted",
        "b_after": "accepted",
        "c_forged": "rejected auth_failed",
        "a_replay": "rejected replay",
        "stranger": "rejected unknown_sender",
        "a_future": "rejected implausible",
    }
    assert b.meter.alerts.get().kind == "tamper"
    assert Reading.objects.filter(meter=b.meter).count() == 4  # hours overlap: 3 then 4

    # Both of a's reports ended a batch: two acks, each answering its own frame, sealed with
    # distinct downlink counters and carrying the mark over everything stored.
    acks = sorted(OutboundMessage.objects.filter(meter=a.meter), key=lambda o: o.counter)
    assert [o.counter for o in acks] == [1, 2]
    opened = [a.open_downlink(bytes(o.payload)) for o in acks]
    assert [ack.answers_counter for ack in opened] == [1, 2]
    assert {ack.acked_through_hour for ack in opened} == {day[-1][0]}
    # The window holds a2; the replay and the rejected future report moved nothing.
    assert MeterKey.objects.get(meter=a.meter).uplink_highest == 2
    a.meter.refresh_from_db()
    assert a.meter.acked_through_hour == day[-1][0] and a.meter.last_message_at is not None


@pytest.mark.django_db
def test_a_duplicate_hour_within_one_batch_is_a_conflict_not_an_overwrite(test_meter):
    meter = test_meter()
    hour = hours_back(1)[0][0]
    first = stored(meter.msisdn, meter.report([(hour, 1_000)]))
    second = stored(meter.msisdn, meter.report([(hour, 2_000)]))
    drain(limit=10)
    assert (outcome_of(first), outcome_of(second)) == ("accepted", "accepted")
    assert Reading.objects.get(meter=meter.meter).wh == 1_000
    conflict = ReadingConflict.objects.get(meter=meter.meter)
    assert (conflict.stored_wh, conflict.received_wh) == (1_000, 2_000)


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_process_every_message_exactly_once(test_meter, settings):
    settings.SMS_BATCH_SIZE = 7  # many small batches, so the drains interleave
    meters = [test_meter() for _ in range(6)]
    frames = 8
    for k in range(frames):
        for m in meters:
            stored(m.msisdn, m.report(hours_back(24 * (frames - k))[:24]))
    connection.close()  # each thread opens its own

    errors: list[BaseException] = []

    def run() -> None:
        try:
            drain(limit=1_000)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and not errors
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {"accepted"}
    assert Reading.objects.count() == len(meters) * frames * 24
    assert OutboundMessage.objects.count() == len(meters) * frames
    for m in meters:
        counters = list(
            OutboundMessage.objects.filter(meter=m.meter).values_list("counter", flat=True)
        )
        assert sorted(counters) == list(range(1, frames + 1))  # none reused, none skipped
        assert MeterKey.objects.get(meter=m.meter).uplink_highest == frames


@pytest.mark.django_db
def test_a_batch_keeps_to_the_daily_outbound_cap(test_meter, settings):
    """Acks of one batch count against the meter's cap as they are queued: beyond it they are
    held (S12), as when they arrive one at a time."""
    settings.SMS_OUTBOUND_DAILY_CAP = 2
    meter = test_meter()
    for i in range(4):
        stored(meter.msisdn, meter.report(hours_back(8)[2 * i : 2 * i + 2]))
    drain(limit=10)
    statuses = sorted(OutboundMessage.objects.values_list("status", flat=True))
    assert statuses.count("capped") == 2 and len(statuses) == 4
    assert OutboundMessage.objects.exclude(status="capped").count() == 2


@pytest.mark.django_db
def test_a_message_that_cannot_be_processed_does_not_hold_up_the_queue(test_meter, monkeypatch):
    """A failure that is nobody's fault in the message (here: a bug, raised for one message)
    leaves that message waiting; the drain processes the rest and stops, instead of taking
    the same message again and again."""
    import smsgateway.ingest as ingest

    meter, other = test_meter(), test_meter()
    reboot = Event(EventKind.REBOOT, datetime_to_hour(timezone.now()) * 3600, 0)
    poisoned = stored(meter.msisdn, meter.report([], [reboot]))  # one-message path (events)
    fine = stored(other.msisdn, other.report(hours_back(2)))
    real = ingest.process
    calls: list[int] = []

    def failing_for_one(message, *, now):
        calls.append(message.pk)
        if message.pk == poisoned:
            raise RuntimeError("bug")
        return real(message, now=now)

    monkeypatch.setattr(ingest, "process", failing_for_one)
    assert drain(limit=100) == (2, 1)  # both taken, the poisoned one left waiting
    assert calls.count(poisoned) == 1  # tried once in this drain, not again and again
    assert outcome_of(poisoned) == "received" and outcome_of(fine) == "accepted"


@pytest.mark.django_db
def test_a_full_drain_with_a_failure_still_hands_the_backlog_on(test_meter, monkeypatch, settings):
    """A drain that stopped at its limit queues the next one even if a message in it failed;
    the backlog behind it does not wait for the beat sweep."""
    import smsgateway.ingest as ingest
    from smsgateway.tasks import process_inbound

    settings.SMS_DRAIN_BATCH = 2
    meter = test_meter()
    reboot = Event(EventKind.REBOOT, datetime_to_hour(timezone.now()) * 3600, 0)
    poisoned = stored(meter.msisdn, meter.report([], [reboot]))
    backlog = [stored(m.msisdn, m.report(hours_back(2))) for m in (test_meter(), test_meter())]
    real = ingest.process

    def failing_for_one(message, *, now):
        if message.pk == poisoned:
            raise RuntimeError("bug")
        return real(message, now=now)

    monkeypatch.setattr(ingest, "process", failing_for_one)
    process_inbound()  # eager: the drains it queues run in turn
    assert [outcome_of(pk) for pk in backlog] == ["accepted", "accepted"]
    assert outcome_of(poisoned) == "received"


@pytest.mark.django_db
def test_the_sweep_hands_a_backlog_on_to_the_drains(test_meter, settings):
    from smsgateway.tasks import sweep_inbound

    settings.SMS_DRAIN_BATCH = settings.SMS_BATCH_SIZE = 2
    meter = test_meter()
    ids = [stored(meter.msisdn, meter.report(hours_back(5)[i : i + 1])) for i in range(5)]
    sweep_inbound()  # takes two, then queues a drain (run inline by the tests' eager Celery)
    assert [outcome_of(pk) for pk in ids] == ["accepted"] * 5


@pytest.mark.django_db
def test_a_resend_after_a_lost_frame_is_stored_without_undoing_the_batchs_copy(test_meter):
    """A frame lost in the middle holds the meter's mark back; its next send repeats hours
    stored after the gap. Only hours no accepted report covered are copied in unchecked, so
    the batch's copy never has to be undone (a savepoint rolled back) for such a meter."""
    from django.test.utils import CaptureQueriesContext

    a, b = test_meter(), test_meter()
    day = hours_back(18)
    stored(a.msisdn, a.report(day[:6]))
    stored(a.msisdn, a.report(day[12:]))  # the frame with day[6:12] never arrived
    assert process_batch(limit=100, now=timezone.now()).handed_back == []
    a.meter.refresh_from_db()
    assert a.meter.acked_through_hour == day[5][0]

    resend = stored(a.msisdn, a.report(day[6:]))
    other = stored(b.msisdn, b.report(hours_back(6)))
    with CaptureQueriesContext(connection) as queries:
        assert process_batch(limit=100, now=timezone.now()).handed_back == []
    assert not [q for q in queries.captured_queries if "ROLLBACK TO SAVEPOINT" in q["sql"]]
    assert (outcome_of(resend), outcome_of(other)) == ("accepted", "accepted")
    assert Reading.objects.filter(meter=a.meter).count() == 18
    assert Reading.objects.filter(meter=b.meter).count() == 6
    assert not ReadingConflict.objects.filter(meter=a.meter).exists()
    a.meter.refresh_from_db()
    assert a.meter.acked_through_hour == day[-1][0]


@pytest.mark.django_db
def test_the_admin_lists_rejected_messages_by_reason(make_staff, verified_client, test_meter):
    from accounts.roles import PROVISIONING

    a = test_meter()
    frame = a.report(hours_back(2))
    accepted, replayed = stored(a.msisdn, frame), stored(a.msisdn, frame)
    stranger = stored("+447700999999", a.report(hours_back(1)))
    drain(limit=10)
    user, device = make_staff("provisioning@utility.example", roles=[PROVISIONING])
    client = verified_client(user, device)
    page = client.get("/admin/smsgateway/inboundmessage/", {"reason": "replay"})
    assert page.status_code == 200
    listed = {row.pk for row in page.context["cl"].result_list}
    assert listed == {replayed}
    assert {accepted, stranger}.isdisjoint(listed)


def _scans_of(plan: dict, table: str) -> list[dict]:
    """The nodes of an EXPLAIN (FORMAT JSON) plan that read `table`."""
    own = [plan] if plan.get("Relation Name") == table else []
    return own + [scan for child in plan.get("Plans", []) for scan in _scans_of(child, table)]


@pytest.mark.django_db
def test_earlier_reports_are_read_per_meter_however_stale_the_statistics():
    """A batch reads its meters' earlier reports and no others, even while the planner's
    statistics still say nothing is accepted (a young table, a backlog just drained): read into
    a hash instead, every accepted report in the table would be read for every batch."""
    Meter.objects.bulk_create(Meter(number=f"RANGES{i:014d}") for i in range(400))
    meters = list(Meter.objects.filter(number__startswith="RANGES").order_by("pk"))
    table = InboundMessage._meta.db_table
    InboundMessage.objects.bulk_create(
        InboundMessage(
            gateway="kannel",
            dedupe_key=f"ranges-{meter.pk}-{n}",
            sender="+447700900001",
            payload=b"frame",
            received_at=timezone.now(),
            meter=meter,
            first_hour=1000 + 24 * n,
            last_hour=1023 + 24 * n,
        )
        for meter in meters
        for n in range(10)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # while every one is still waiting
    InboundMessage.objects.update(status=InboundStatus.ACCEPTED)
    # A batch of 100 meters: one new (no mark), one with a mark past six of its reports.
    marks = {meter.pk: 1000 + 24 * 10 for meter in meters[:100]}
    marks[meters[0].pk], marks[meters[1].pk] = None, 1000 + 24 * 6

    ranges = rules.accepted_ranges(marks)
    assert ranges == {
        meters[0].pk: [(1000 + 24 * n, 1023 + 24 * n) for n in range(10)],
        meters[1].pk: [(1000 + 24 * n, 1023 + 24 * n) for n in range(6, 10)],
    }
    ids = sorted(marks)
    with array_cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + rules.ACCEPTED_RANGES,
            [ids, [marks[pk] for pk in ids], InboundStatus.ACCEPTED],
        )
        plan = cursor.fetchone()[0][0]["Plan"]
    # Each meter's own index entries, once per meter of the batch, and nothing else.
    [scan] = _scans_of(plan, table)
    assert scan.get("Index Name") == "inbound_by_meter"
    assert "meter_id = v.meter_id" in scan.get("Index Cond", "")
    assert scan["Actual Loops"] == len(marks)
