"""The webhook path: store raw, verify, store readings idempotently, ack from what is stored."""

import pytest
from django.db import connection

from audit.models import AuditEvent
from devices.models import MeterEvent
from meteragent.protocol import Event, EventKind
from readings.models import Reading, ReadingConflict
from readings.services import hour_to_datetime
from smsgateway.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus

from .conftest import hours_back, last_ack, outcome


@pytest.mark.django_db
def test_a_report_is_stored_and_acked(
    test_meter, post_sms, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "smsgateway.backends.FileBackend"
    settings.SMS_FILE_BACKEND_PATH = str(tmp_path / "outbox.jsonl")
    meter = test_meter()
    readings = hours_back(24)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_sms(meter.msisdn, meter.report(readings))
    assert len(callbacks) == 1  # the send task, enqueued only once the transaction committed
    assert response.status_code == 200 and outcome(response) == "accepted"

    stored = list(
        Reading.objects.filter(meter=meter.meter).order_by("hour").values_list("hour", "wh")
    )
    assert stored == [(hour_to_datetime(h), wh) for h, wh in readings]
    message = InboundMessage.objects.get()
    assert (message.status, message.counter, message.key_id) == ("accepted", 1, 1)
    assert (message.first_hour, message.last_hour) == (readings[0][0], readings[-1][0])

    ack = last_ack(meter)
    assert ack.answers_counter == 1
    assert ack.acked_through_hour == readings[-1][0]
    outbound = OutboundMessage.objects.get()
    assert outbound.status == OutboundStatus.SENT  # the eager task sent it through the backend
    assert outbound.payload.hex() in (tmp_path / "outbox.jsonl").read_text()


@pytest.mark.django_db
def test_a_gateway_retry_changes_nothing(test_meter, post_sms):
    meter = test_meter()
    frame = meter.report(hours_back(5))
    assert outcome(post_sms(meter.msisdn, frame, gateway_id="abc")) == "accepted"
    again = post_sms(meter.msisdn, frame, gateway_id="abc")
    assert again.status_code == 200 and again.text == "duplicate"
    assert InboundMessage.objects.count() == 1
    assert OutboundMessage.objects.count() == 1
    assert Reading.objects.count() == 5


@pytest.mark.django_db
def test_the_same_frame_under_a_new_gateway_id_is_a_replay(test_meter, post_sms):
    meter = test_meter()
    frame = meter.report(hours_back(3))
    post_sms(meter.msisdn, frame)
    response = post_sms(meter.msisdn, frame)
    assert response.status_code == 200 and outcome(response) == "rejected replay"
    assert Reading.objects.count() == 3 and OutboundMessage.objects.count() == 1


@pytest.mark.django_db
def test_frames_out_of_order_are_accepted_once_and_the_mark_stays_contiguous(test_meter, post_sms):
    meter = test_meter()
    day = hours_back(30)
    first, second, third = (meter.report(day[i : i + 10]) for i in (0, 10, 20))
    assert outcome(post_sms(meter.msisdn, first)) == "accepted"
    assert outcome(post_sms(meter.msisdn, third)) == "accepted"  # the second is late
    assert last_ack(meter).acked_through_hour == day[9][0]
    assert outcome(post_sms(meter.msisdn, second)) == "accepted"
    assert last_ack(meter).acked_through_hour == day[29][0]
    assert Reading.objects.count() == 30


@pytest.mark.django_db
def test_a_gap_inside_one_report_does_not_hold_the_mark(test_meter, post_sms):
    meter = test_meter()
    day = hours_back(12)
    with_gap = day[:4] + day[7:]  # the meter itself has nothing for three hours
    post_sms(meter.msisdn, meter.report(with_gap))
    assert last_ack(meter).acked_through_hour == day[-1][0]


@pytest.mark.django_db
def test_a_conflicting_value_is_kept_aside_never_overwritten(test_meter, post_sms):
    meter = test_meter()
    day = hours_back(4)
    post_sms(meter.msisdn, meter.report(day))
    changed = [*day[:3], (day[3][0], day[3][1] + 999)]
    assert outcome(post_sms(meter.msisdn, meter.report(changed))) == "accepted"
    assert Reading.objects.get(meter=meter.meter, hour=hour_to_datetime(day[3][0])).wh == day[3][1]
    conflict = ReadingConflict.objects.get()
    assert (conflict.stored_wh, conflict.received_wh) == (day[3][1], day[3][1] + 999)


@pytest.mark.django_db
def test_a_heartbeat_is_acked_with_the_time(test_meter, post_sms):
    meter = test_meter()
    assert outcome(post_sms(meter.msisdn, meter.report())) == "accepted"
    ack = last_ack(meter)
    assert ack.acked_through_hour is None and ack.server_time > 1_700_000_000


@pytest.mark.django_db
def test_events_are_stored_and_tamper_raises_an_alert(test_meter, post_sms):
    meter = test_meter()
    now_minute = int(hours_back(2)[0][0]) * 3600  # the last hour: no event after sent_at
    events = [Event(EventKind.REBOOT, now_minute, 0), Event(EventKind.TAMPER, now_minute + 60, 1)]
    post_sms(meter.msisdn, meter.report(hours_back(2), events))
    assert set(MeterEvent.objects.values_list("kind", flat=True)) == {"reboot", "tamper"}
    assert meter.meter.alerts.get().kind == "tamper"
    assert AuditEvent.objects.filter(action="devices.alert_tamper").exists()


@pytest.mark.django_db
def test_only_the_last_frame_of_a_batch_is_acked(test_meter, post_sms):
    meter = test_meter()
    day = hours_back(20)
    post_sms(meter.msisdn, meter.report(day[:10], remaining=1))
    assert OutboundMessage.objects.count() == 0
    post_sms(meter.msisdn, meter.report(day[10:], remaining=0))
    assert last_ack(meter).acked_through_hour == day[-1][0]


class _LockedTable:
    """Another session holds an exclusive lock on a table; our connection gives up on locks
    after 200 ms, as a database in trouble looks to the webhook or a drain."""

    def __init__(self, table: str) -> None:
        import psycopg
        from django.conf import settings as dj

        db = dj.DATABASES["default"]
        self.blocker = psycopg.connect(
            host=db["HOST"] or "localhost",
            port=db["PORT"] or 5432,
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname=connection.settings_dict["NAME"],
        )
        self.table = table

    def __enter__(self):
        self.blocker.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        return self

    def __exit__(self, *exc) -> None:
        self.blocker.rollback()
        self.blocker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_trouble_while_storing_asks_the_gateway_to_retry(test_meter, post_sms):
    """The raw message cannot be stored: 503, so Kannel keeps it and retries; nothing is
    half-written, and the retry is stored and processed in full."""
    meter = test_meter()
    frame = meter.report(hours_back(6))
    with _LockedTable("smsgateway_inboundmessage"):
        response = post_sms(meter.msisdn, frame, gateway_id="retry-me")
    assert response.status_code == 503
    assert InboundMessage.objects.count() == 0 and Reading.objects.count() == 0

    assert outcome(post_sms(meter.msisdn, frame, gateway_id="retry-me")) == "accepted"
    assert Reading.objects.count() == 6 and OutboundMessage.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_trouble_while_processing_leaves_the_message_waiting(test_meter, post_sms):
    """Stored, but the drain cannot take the meter's key: the message's transaction is rolled
    back and it waits, whole, for the next drain (a gateway retry or the beat sweep)."""
    from smsgateway.tasks import sweep_inbound

    meter = test_meter()
    frame = meter.report(hours_back(6))
    with _LockedTable("devices_meterkey"):
        response = post_sms(meter.msisdn, frame, gateway_id="retry-me")
    assert response.status_code == 200 and response.text.startswith("queued ")
    message = InboundMessage.objects.get()
    assert message.status == InboundStatus.RECEIVED and bytes(message.payload) == frame
    assert Reading.objects.count() == 0 and OutboundMessage.objects.count() == 0

    assert sweep_inbound() == 1
    message.refresh_from_db()
    assert message.status == InboundStatus.ACCEPTED
    assert Reading.objects.count() == 6 and OutboundMessage.objects.count() == 1
    retry = post_sms(meter.msisdn, frame, gateway_id="retry-me")
    assert retry.status_code == 200 and retry.text == "duplicate"
    assert Reading.objects.count() == 6 and OutboundMessage.objects.count() == 1


@pytest.mark.django_db
def test_device_info_registers_the_signing_key_once(test_meter, post_sms):
    from devices.models import Meter
    from meteragent.protocol import DeviceInfo

    meter = test_meter()
    key = bytes(range(32))
    assert outcome(post_sms(meter.msisdn, meter.frame(DeviceInfo(key, "1.0.0")))) == "accepted"
    stored = Meter.objects.get(pk=meter.meter.pk)
    assert bytes(stored.signing_public_key) == key and stored.software_version == "1.0.0"
    assert OutboundMessage.objects.count() == 0  # the ack of the batch it precedes confirms it

    # Another key later is not taken: an alert instead.
    assert post_sms(meter.msisdn, meter.frame(DeviceInfo(b"\x01" * 32, "1.0.1"))).status_code == 200
    stored.refresh_from_db()
    assert bytes(stored.signing_public_key) == key
    assert stored.alerts.get().kind == "identity_changed"
    assert AuditEvent.objects.filter(action="devices.signing_key_mismatch").exists()
