"""A rotation the meter never answers stalls with an alert; staff cancel or restart it in the
admin, audited and capped like the other key operations."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from devices.models import AlertKind, KeyRotation, MeterAlert, RotationState
from devices.services import DeviceError, cancel_rotation, complete_rekey, schedule_rotations
from meteragent.protocol import meter_handle_init
from smsgateway.models import OutboundMessage
from smsgateway.rekeys import send_rekey_inits, stall_unanswered_rotations

ROTATIONS = "/admin/devices/keyrotation/"


@pytest.fixture
def stalled(test_meter, settings):
    """stalled() -> (test meter, its rotation) after REKEY_MAX_ATTEMPTS unanswered INITs and
    the wait after the last one."""
    settings.REKEY_RESEND_HOURS = 12
    settings.REKEY_MAX_ATTEMPTS = 3
    settings.ADMINS = [("Operators", "ops@utility.example")]

    def make():
        meter = test_meter()
        [rotation] = schedule_rotations([meter.meter], by="test")
        now = timezone.now()
        for _ in range(3):
            assert send_rekey_inits(now=now) == 1
            now += timedelta(hours=13)
        assert send_rekey_inits(now=now) == 0  # out of attempts: no fourth INIT
        assert stall_unanswered_rotations(now=now) == 1
        rotation.refresh_from_db()
        return meter, rotation

    return make


def _security_admin(make_staff, verified_client, email="sec@utility.example"):
    user, device = make_staff(email, roles=["Security admin"])
    return verified_client(user, device)


def _act(client, action: str, rotations):
    return client.post(
        ROTATIONS,
        {"action": action, "_selected_action": [r.pk for r in rotations]},
        follow=True,
    )


@pytest.mark.django_db
def test_a_rotation_out_of_attempts_stalls_with_one_alert_and_one_mail(stalled):
    meter, rotation = stalled()
    assert rotation.state == RotationState.STALLED and rotation.init_attempts == 3
    alert = MeterAlert.objects.get(meter=meter.meter, kind=AlertKind.ROTATION_STALLED)
    assert alert.closed_at is None and alert.details["attempts"] == 3
    assert AuditEvent.objects.get(action="devices.alert_rotation_stalled").outcome == "alert"
    [message] = mail.outbox
    assert "1 key rotations out of attempts" in message.subject and str(meter.meter) in message.body

    # Later sweeps neither resend nor alert again; a new rotation is still refused.
    later = timezone.now() + timedelta(days=10)
    assert send_rekey_inits(now=later) == 0
    assert stall_unanswered_rotations(now=later) == 0
    assert len(mail.outbox) == 1
    with pytest.raises(DeviceError, match="already has a rotation open"):
        schedule_rotations([meter.meter], by="test")


@pytest.mark.django_db
def test_staff_cancel_a_stalled_rotation_in_the_admin_and_may_schedule_anew(
    stalled, make_staff, verified_client
):
    meter, rotation = stalled()
    client = _security_admin(make_staff, verified_client)
    response = _act(client, "cancel", [rotation])
    assert "Cancelled 1 key rotations." in response.content.decode()

    rotation.refresh_from_db()
    assert rotation.state == RotationState.CANCELLED and rotation.wrapped_ephemeral is None
    assert not MeterAlert.objects.filter(meter=meter.meter, closed_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="devices.rotation_cancelled")
    assert event.actor_label == "sec@utility.example" and event.details["was"] == "stalled"
    # The meter is free to rotate again.
    [again] = schedule_rotations([meter.meter], by="test")
    assert again.new_key_id == rotation.new_key_id


@pytest.mark.django_db
def test_staff_restart_a_stalled_rotation_and_the_same_agreement_completes_it(
    stalled, make_staff, verified_client
):
    meter, rotation = stalled()
    client = _security_admin(make_staff, verified_client)
    assert "Restarted 1 key rotations" in _act(client, "restart", [rotation]).content.decode()

    rotation.refresh_from_db()
    assert rotation.state == RotationState.SCHEDULED and rotation.init_attempts == 0
    assert not MeterAlert.objects.filter(meter=meter.meter, closed_at__isnull=True).exists()
    assert AuditEvent.objects.get(action="devices.rotation_restarted").details == {
        "new_key_id": rotation.new_key_id,
        "attempts_before": 3,
    }
    assert send_rekey_inits(now=timezone.now()) == 1
    first, *_, latest = OutboundMessage.objects.filter(kind="rekey").order_by("pk")
    init = meter.open_downlink(bytes(latest.payload))
    assert init == meter.open_downlink(bytes(first.payload))  # same exchange, same answer
    pending = meter_handle_init(meter.keys, init, init_counter=latest.counter)
    assert complete_rekey(meter.meter, pending.accept, now=timezone.now()) is not None
    rotation.refresh_from_db()
    assert rotation.state == RotationState.ACCEPTED


@pytest.mark.django_db
def test_a_late_answer_still_completes_a_stalled_rotation(stalled):
    meter, rotation = stalled()
    init_out = OutboundMessage.objects.filter(kind="rekey").latest("pk")
    pending = meter_handle_init(
        meter.keys, meter.open_downlink(bytes(init_out.payload)), init_counter=init_out.counter
    )
    assert complete_rekey(meter.meter, pending.accept, now=timezone.now()) is not None
    rotation.refresh_from_db()
    assert rotation.state == RotationState.ACCEPTED
    assert not MeterAlert.objects.filter(meter=meter.meter, closed_at__isnull=True).exists()


@pytest.mark.django_db
def test_restart_and_cancel_are_refused_whole_for_the_wrong_states(
    stalled, test_meter, make_staff, verified_client
):
    meter, rotation = stalled()
    fresh = test_meter()
    [scheduled] = schedule_rotations([fresh.meter], by="test")
    client = _security_admin(make_staff, verified_client)

    page = _act(client, "restart", [rotation, scheduled]).content.decode()
    assert "only a stalled rotation restarts" in page
    rotation.refresh_from_db()
    assert rotation.state == RotationState.STALLED  # nothing of the request ran
    assert not AuditEvent.objects.filter(action="devices.rotation_restarted").exists()

    # An answered exchange is not cancelled: the meter may already use the new key.
    init_out = OutboundMessage.objects.filter(kind="rekey").latest("pk")
    pending = meter_handle_init(
        meter.keys, meter.open_downlink(bytes(init_out.payload)), init_counter=init_out.counter
    )
    complete_rekey(meter.meter, pending.accept, now=timezone.now())
    with pytest.raises(DeviceError, match="may already use the new key"):
        cancel_rotation(rotation, by="test")
    assert KeyRotation.objects.get(pk=rotation.pk).state == RotationState.ACCEPTED


@pytest.mark.django_db
def test_restarts_and_cancels_beyond_the_cap_are_refused_whole_and_alerted(
    stalled, settings, make_staff, verified_client
):
    rotations = [stalled()[1] for _ in range(3)]
    settings.ANOMALY_CAPS = {
        **settings.ANOMALY_CAPS,
        "devices.rotation_restarted": (2, 3600),
        "devices.rotation_cancelled": (2, 3600),
    }
    client = _security_admin(make_staff, verified_client)
    for action in ("restart", "cancel"):
        page = _act(client, action, rotations).content.decode()
        assert "exceeds the cap of 2" in page
        assert set(KeyRotation.objects.values_list("state", flat=True)) == {"stalled"}
    assert AuditEvent.objects.filter(action="cap.exceeded", outcome="alert").count() == 2


@pytest.mark.django_db
def test_only_a_security_admin_is_offered_the_rotation_actions(
    stalled, make_staff, verified_client, client
):
    _, rotation = stalled()
    user, device = make_staff("prov@utility.example", roles=["Provisioning"])
    verified_client(user, device)
    form = client.get(ROTATIONS).context["action_form"]
    assert form is None or "cancel" not in dict(form.fields["action"].choices)
    _act(client, "cancel", [rotation])
    rotation.refresh_from_db()
    assert rotation.state == RotationState.STALLED

    client.logout()
    _security_admin(make_staff, verified_client)
    choices = dict(client.get(ROTATIONS).context["action_form"].fields["action"].choices)
    assert {"cancel", "restart"} <= set(choices)


@pytest.mark.django_db
def test_the_beat_task_stalls_what_ran_out_and_sends_the_rest(test_meter, settings):
    from smsgateway.tasks import send_rekey_inits as beat_task

    settings.REKEY_MAX_ATTEMPTS = 1
    settings.ADMINS = [("Operators", "ops@utility.example")]
    silent, fresh = test_meter(), test_meter()
    [unanswered] = schedule_rotations([silent.meter], by="test")
    assert beat_task() == 1  # its only attempt
    KeyRotation.objects.filter(pk=unanswered.pk).update(
        last_sent_at=timezone.now() - timedelta(hours=13)
    )
    schedule_rotations([fresh.meter], by="test")

    assert beat_task() == 1  # the fresh rotation's agreement
    states = dict(KeyRotation.objects.values_list("meter_id", "state"))
    assert states == {silent.meter.pk: "stalled", fresh.meter.pk: "init_sent"}
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_suspended_meters_rotation_pauses_and_resumes_on_reactivation(test_meter):
    from devices.services import reactivate_meter, suspend_meters

    meter = test_meter()
    [rotation] = schedule_rotations([meter.meter], by="test")
    suspend_meters([meter.meter], by="test", reason="investigation")
    assert send_rekey_inits(now=timezone.now()) == 0
    rotation.refresh_from_db()
    assert rotation.state == RotationState.SCHEDULED and rotation.init_attempts == 0
    reactivate_meter(meter.meter, by="test", reason="cleared")
    assert send_rekey_inits(now=timezone.now()) == 1
