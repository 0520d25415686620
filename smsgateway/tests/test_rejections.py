"""Every rejection reason: a clear, counted, logged and audited answer; nothing half-written."""

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from devices.models import AlertKind, KeyState, Meter, MeterAlert, MeterKey
from devices.services import decommission_meter, suspend_meters
from meteragent.protocol import Ack, derive_keys, encode_downlink
from readings.models import Reading
from readings.services import datetime_to_hour
from smsgateway.models import InboundMessage, OutboundMessage

from .conftest import hours_back, outcome


def _assert_rejected(response, reason: str, *, readings_before: int = 0) -> InboundMessage:
    assert outcome(response) == f"rejected {reason}"
    message = InboundMessage.objects.latest("pk")
    assert message.status == "rejected" and message.reason == reason
    event = AuditEvent.objects.filter(action="sms.rejected").latest("seq")
    assert event.details["reason"] == reason
    assert Reading.objects.count() == readings_before  # nothing written for a rejected message
    return message


@pytest.mark.django_db
def test_unknown_sender(test_meter, post_sms):
    meter = test_meter()
    _assert_rejected(post_sms("+447700999999", meter.report(hours_back(2))), "unknown_sender")


@pytest.mark.django_db
def test_sim_without_meter(test_meter, post_sms):
    meter = test_meter()
    frame, msisdn = meter.report(hours_back(2)), meter.msisdn
    sim = meter.meter.sim
    sim.meter = None
    sim.save()
    _assert_rejected(post_sms(msisdn, frame), "no_meter")


@pytest.mark.django_db
def test_suspended_meter_is_rejected_and_counted(test_meter, post_sms):
    meter = test_meter()
    suspend_meters([meter.meter], by="test", reason="case 7")
    _assert_rejected(post_sms(meter.msisdn, meter.report(hours_back(2))), "meter_suspended")
    _assert_rejected(post_sms(meter.msisdn, meter.report(hours_back(2))), "meter_suspended")
    assert Meter.objects.get(pk=meter.meter.pk).rejected_while_suspended == 2


@pytest.mark.django_db
def test_decommissioned_meter(test_meter, post_sms):
    meter = test_meter()
    decommission_meter(meter.meter, by="test", reason="gone")
    _assert_rejected(post_sms(meter.msisdn, meter.report(hours_back(2))), "meter_decommissioned")


@pytest.mark.django_db
def test_meter_never_provisioned(make_meter, post_sms, test_meter):
    other = test_meter()
    fresh = make_meter()
    _assert_rejected(post_sms(fresh.sim.msisdn, other.report()), "meter_not_provisioned")


@pytest.mark.django_db
def test_text_message_is_not_a_frame(test_meter, post_sms):
    meter = test_meter()
    _assert_rejected(post_sms(meter.msisdn, b"hello", coding="0"), "not_binary")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f + b"\x00", "oversized"),
        (lambda f: f[:100], "malformed"),
        (lambda f: b"", "malformed"),
        (lambda f: bytes([0x20 | (f[0] & 0x0F)]) + f[1:], "bad_version"),
        (lambda f: f[:1] + b"\x00\x09" + f[3:], "unknown_key"),
        (lambda f: f[:50] + bytes([f[50] ^ 1]) + f[51:], "auth_failed"),
        (lambda f: f[:-1] + bytes([f[-1] ^ 0x80]), "auth_failed"),
        (lambda f: f[:3] + b"\x00\x00\x00\x07" + f[7:], "auth_failed"),
    ],
)
@pytest.mark.django_db
def test_forged_truncated_and_oversized_frames(test_meter, post_sms, mutate, reason):
    meter = test_meter()
    _assert_rejected(post_sms(meter.msisdn, mutate(meter.report(hours_back(3)))), reason)
    assert OutboundMessage.objects.count() == 0
    key = MeterKey.objects.get(meter=meter.meter)
    assert key.uplink_highest == 0  # the replay window moved for nothing unauthenticated


@pytest.mark.django_db
def test_stale_counter_below_the_window(test_meter, post_sms):
    meter = test_meter()
    old = meter.report(hours_back(2))
    meter.counter = 100
    post_sms(meter.msisdn, meter.report(hours_back(2)))
    _assert_rejected(post_sms(meter.msisdn, old), "stale", readings_before=2)
    # Authentic but far behind: the meter's counters went back, which is reported, not dropped.
    alert = MeterAlert.objects.get(meter=meter.meter, closed_at__isnull=True)
    assert alert.kind == AlertKind.TAMPER
    assert "counter 1 is older than the window" in alert.details["counter_behind_window"]


@pytest.mark.django_db
def test_a_forged_old_counter_opens_no_alert(test_meter, post_sms):
    meter = test_meter()
    meter.counter = 100
    post_sms(meter.msisdn, meter.report(hours_back(2)))
    meter.counter = 1
    forged = meter.report(hours_back(2))
    forged = forged[:50] + bytes([forged[50] ^ 1]) + forged[51:]
    _assert_rejected(post_sms(meter.msisdn, forged), "auth_failed", readings_before=2)
    assert not MeterAlert.objects.filter(meter=meter.meter).exists()


@pytest.mark.django_db
def test_a_downlink_frame_sent_uplink(test_meter, post_sms):
    meter = test_meter()
    ack = Ack(answers_counter=1, acked_through_hour=None, server_time=1_800_000_000)
    frame = encode_downlink(ack, keys=meter.keys, counter=1)
    _assert_rejected(post_sms(meter.msisdn, frame), "malformed")


@pytest.mark.django_db
def test_readings_from_the_future_are_implausible(test_meter, post_sms):
    meter = test_meter()
    future = datetime_to_hour(timezone.now()) + 48
    _assert_rejected(post_sms(meter.msisdn, meter.report([(future, 5)])), "implausible")


@pytest.mark.django_db
def test_a_retired_key_no_longer_opens_messages(test_meter, post_sms):
    meter = test_meter()
    MeterKey.objects.filter(meter=meter.meter).update(state=KeyState.RETIRED)
    _assert_rejected(post_sms(meter.msisdn, meter.report(hours_back(1))), "unknown_key")


@pytest.mark.django_db
def test_a_key_of_another_meter_does_not_open(test_meter, post_sms):
    a, b = test_meter(), test_meter()
    b.keys = derive_keys(b"\x01" * 32, 1)  # b sends under a key the server never issued
    _assert_rejected(post_sms(b.msisdn, b.report(hours_back(1))), "auth_failed")
    assert a.meter.pk != b.meter.pk


@pytest.mark.django_db
def test_a_burst_of_failed_authentication_raises_an_alert(test_meter, post_sms, settings):
    settings.SMS_AUTH_FAILURE_BURST = 3
    meter = test_meter()
    for _ in range(3):
        frame = meter.report(hours_back(1))
        post_sms(meter.msisdn, frame[:60] + bytes([frame[60] ^ 4]) + frame[61:])
    alert = meter.meter.alerts.get()
    assert alert.kind == "auth_failures" and alert.details["failures"] == 3


@pytest.mark.django_db
def test_the_gateway_must_know_the_secret(test_meter, post_sms):
    meter = test_meter()
    response = post_sms(meter.msisdn, meter.report(hours_back(1)), secret="guess")
    assert response.status_code == 403
    assert InboundMessage.objects.count() == 0
    assert AuditEvent.objects.get(action="sms.gateway_refused").details["reason"] == (
        "bad gateway secret"
    )


@pytest.mark.django_db
def test_the_gateway_must_come_from_an_allowed_address(test_meter, post_sms, client):
    meter = test_meter()
    client.defaults["REMOTE_ADDR"] = "198.51.100.7"
    response = post_sms(meter.msisdn, meter.report(hours_back(1)))
    assert response.status_code == 403 and InboundMessage.objects.count() == 0


@pytest.mark.django_db
def test_an_oversized_request_body_is_refused_before_storing(test_meter, post_sms):
    meter = test_meter()
    response = post_sms(meter.msisdn, b"\x00" * 5000)
    assert response.status_code == 413 and InboundMessage.objects.count() == 0


@pytest.mark.django_db
def test_the_gateway_is_authenticated_before_its_request_is_read(test_meter, post_sms):
    meter = test_meter()
    oversized = post_sms(meter.msisdn, b"\x00" * 5000, secret="guess")
    malformed = post_sms(meter.msisdn, meter.report(hours_back(1)), secret="guess", coding="x")
    assert [oversized.status_code, malformed.status_code] == [403, 403]
    assert InboundMessage.objects.count() == 0


@pytest.mark.django_db
def test_the_front_end_does_not_serve_the_webhook(test_meter, post_sms, settings):
    settings.SMS_INGEST_ENABLED = False
    meter = test_meter()
    assert post_sms(meter.msisdn, meter.report()).status_code == 404


@pytest.mark.django_db
def test_a_stored_key_that_does_not_open_is_a_rejection_not_a_crash(test_meter, post_sms):
    a, b = test_meter(), test_meter()
    key_a, key_b = MeterKey.objects.get(meter=a.meter), MeterKey.objects.get(meter=b.meter)
    key_b.wrapped_key = key_a.wrapped_key  # moved between rows in the database
    key_b.save(update_fields=["wrapped_key"])
    _assert_rejected(post_sms(b.msisdn, b.report(hours_back(2))), "key_unusable")


@pytest.mark.django_db
def test_processing_a_message_twice_changes_nothing(test_meter, post_sms):
    from smsgateway.ingest import process

    meter = test_meter()
    assert outcome(post_sms(meter.msisdn, meter.report(hours_back(3)))) == "accepted"
    message = InboundMessage.objects.get()
    message.status = "received"  # as a racing retry or the sweeper would still see it
    process(message, now=timezone.now())
    message.refresh_from_db()
    assert message.status == "accepted" and message.reason == ""
    assert OutboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    "junk", ["4611686018427387904", "9" * 40, "253402300800", "2026-13-45 25:61:00", "noon"]
)
@pytest.mark.django_db
def test_a_time_that_is_no_time_is_refused_not_a_crash(test_meter, post_sms, junk):
    meter = test_meter()
    response = post_sms(meter.msisdn, meter.report(hours_back(1)), time=junk)
    assert (response.status_code, response.content) == (400, b"bad time")
    assert InboundMessage.objects.count() == 0
    assert AuditEvent.objects.get(action="sms.gateway_refused").details["reason"] == "bad time"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("1764892800", "2025-12-05T00:00:00+00:00"),
        ("2025-12-05 01:00:00", "2025-12-05T01:00:00+00:00"),
    ],
)
@pytest.mark.django_db
def test_the_gateway_time_is_stored_in_utc(test_meter, post_sms, sent, stored):
    meter = test_meter()
    assert post_sms(meter.msisdn, meter.report(hours_back(1)), time=sent).status_code == 200
    assert InboundMessage.objects.get().gateway_time.isoformat() == stored
