"""A key rotation carried out over the SMS path, end to end inside the portal."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import KeyRotation, KeyState, MeterKey, RotationState
from devices.services import schedule_rotations
from meteragent.protocol import RekeyInit, meter_handle_init
from smsgateway.models import InboundMessage, OutboundMessage
from smsgateway.rekeys import send_rekey_inits

from .conftest import hours_back, last_ack, outcome


@pytest.mark.django_db
def test_rotation_runs_over_the_sms_path(test_meter, post_sms):
    meter = test_meter()
    post_sms(meter.msisdn, meter.report(hours_back(3)))
    schedule_rotations([meter.meter], by="test")
    assert send_rekey_inits(now=timezone.now()) == 1

    init_out = OutboundMessage.objects.filter(kind="rekey").get()
    init = meter.open_downlink(bytes(init_out.payload))
    assert isinstance(init, RekeyInit) and init_out.key_id == 1
    pending = meter_handle_init(meter.keys, init, init_counter=init_out.counter)

    assert outcome(post_sms(meter.msisdn, meter.frame(pending.accept))) == "accepted"
    # The server answers under the new key: the meter learns the server holds it.
    ack_out = OutboundMessage.objects.latest("pk")
    assert ack_out.key_id == pending.new_key_id
    ack = meter.open_downlink(bytes(ack_out.payload), pending.new_keys)
    assert ack.answers_counter == meter.counter

    # The meter switches; its next report under the new key completes the rotation.
    meter.keys, meter.counter = pending.new_keys, 0
    assert outcome(post_sms(meter.msisdn, meter.report(hours_back(4)))) == "accepted"
    assert KeyRotation.objects.get().state == RotationState.COMPLETED
    states = dict(MeterKey.objects.values_list("key_id", "state"))
    assert states == {1: KeyState.RETIRED, pending.new_key_id: KeyState.ACTIVE}
    assert last_ack(meter, pending.new_keys).acked_through_hour == hours_back(1)[0][0]
    assert InboundMessage.objects.filter(status="rejected").count() == 0


@pytest.mark.django_db
def test_an_unanswered_init_is_sent_again_later(test_meter, settings):
    settings.REKEY_RESEND_HOURS = 12
    meter = test_meter()
    schedule_rotations([meter.meter], by="test")
    now = timezone.now()
    assert send_rekey_inits(now=now) == 1
    assert send_rekey_inits(now=now + timedelta(hours=1)) == 0
    assert send_rekey_inits(now=now + timedelta(hours=13)) == 1
    first, second = OutboundMessage.objects.filter(kind="rekey").order_by("pk")
    assert meter.open_downlink(bytes(first.payload)) == meter.open_downlink(bytes(second.payload))
