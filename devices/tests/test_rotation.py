"""Over-the-air key rotation: pending → active → retired, under lost and repeated messages."""

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from devices.models import KeyRotation, KeyState, MeterKey, RotationState
from devices.selectors import downlink_key, session_keys, usable_keys
from devices.services import (
    DeviceError,
    cancel_rotation,
    complete_rekey,
    decommission_meter,
    key_used,
    rekey_init,
    schedule_rotations,
)
from meteragent.protocol import derive_keys, meter_handle_init


def _states(meter) -> dict[int, str]:
    return dict(MeterKey.objects.filter(meter=meter).values_list("key_id", "state"))


@pytest.mark.django_db
def test_a_rotation_runs_to_completion(active_meter):
    meter, root, key_id = active_meter()
    meter_keys = derive_keys(root, key_id)
    [rotation] = schedule_rotations([meter], by="test")
    assert rotation.state == RotationState.SCHEDULED

    init, seal_under = rekey_init(rotation, now=timezone.now())
    assert seal_under.key_id == key_id  # the INIT travels under the current key
    pending = meter_handle_init(meter_keys, init, init_counter=1)

    new_key = complete_rekey(meter, pending.accept, now=timezone.now())
    rotation.refresh_from_db()
    assert rotation.state == RotationState.ACCEPTED
    assert rotation.wrapped_ephemeral is None  # forward secrecy: the ephemeral key is gone
    assert _states(meter) == {key_id: KeyState.ACTIVE, new_key.key_id: KeyState.PENDING}
    # Both ends hold the same new key; the server signals it by sealing downlinks under it.
    assert session_keys(new_key) == pending.new_keys
    assert downlink_key(meter).key_id == new_key.key_id
    # Until the meter uses the new key, the old one still opens its messages.
    assert set(usable_keys(meter).values_list("key_id", flat=True)) == {key_id, new_key.key_id}

    key_used(meter, new_key.key_id, at=timezone.now())
    rotation.refresh_from_db()
    assert rotation.state == RotationState.COMPLETED
    assert _states(meter) == {key_id: KeyState.RETIRED, new_key.key_id: KeyState.ACTIVE}
    assert list(usable_keys(meter).values_list("key_id", flat=True)) == [new_key.key_id]
    assert AuditEvent.objects.filter(action="devices.key_activated").count() == 2


@pytest.mark.django_db
def test_a_lost_init_is_sent_again_unchanged(active_meter):
    meter, root, key_id = active_meter()
    [rotation] = schedule_rotations([meter], by="test")
    first, _ = rekey_init(rotation, now=timezone.now())  # lost on the way
    again, _ = rekey_init(rotation, now=timezone.now())
    assert first == again
    rotation.refresh_from_db()
    assert rotation.init_attempts == 2
    pending = meter_handle_init(derive_keys(root, key_id), again, init_counter=2)
    assert session_keys(complete_rekey(meter, pending.accept, now=timezone.now())) == (
        pending.new_keys
    )


@pytest.mark.django_db
def test_a_lost_accept_is_recovered_by_repeating_the_init(active_meter):
    meter, root, key_id = active_meter()
    meter_keys = derive_keys(root, key_id)
    [rotation] = schedule_rotations([meter], by="test")
    init, _ = rekey_init(rotation, now=timezone.now())
    pending = meter_handle_init(meter_keys, init, init_counter=1)  # its ACCEPT is lost
    init_again, _ = rekey_init(rotation, now=timezone.now())
    pending_again = meter_handle_init(meter_keys, init_again, init_counter=2, pending=pending)
    assert pending_again.new_root == pending.new_root
    new_key = complete_rekey(meter, pending_again.accept, now=timezone.now())
    assert session_keys(new_key) == pending.new_keys


@pytest.mark.django_db
def test_a_repeated_accept_changes_nothing(active_meter):
    meter, root, key_id = active_meter()
    [rotation] = schedule_rotations([meter], by="test")
    init, _ = rekey_init(rotation, now=timezone.now())
    pending = meter_handle_init(derive_keys(root, key_id), init, init_counter=1)
    first = complete_rekey(meter, pending.accept, now=timezone.now())
    again = complete_rekey(meter, pending.accept, now=timezone.now())
    assert first.pk == again.pk
    assert MeterKey.objects.filter(meter=meter).count() == 2
    key_used(meter, first.key_id, at=timezone.now())
    # A late duplicate after completion opens nothing new either.
    assert complete_rekey(meter, pending.accept, now=timezone.now()) is None
    assert AuditEvent.objects.filter(action="devices.rekey_unexpected").count() == 1


@pytest.mark.django_db
def test_an_accept_nobody_asked_for_is_refused_and_audited(active_meter):
    meter, _, _ = active_meter()
    from meteragent.protocol import RekeyAccept

    assert complete_rekey(meter, RekeyAccept(1, 7, b"\x09" * 32), now=timezone.now()) is None
    assert AuditEvent.objects.get(action="devices.rekey_unexpected").outcome == "denied"
    assert MeterKey.objects.filter(meter=meter).count() == 1


@pytest.mark.django_db
def test_one_open_rotation_per_meter_and_only_for_active_meters(active_meter, make_meter):
    meter, _, _ = active_meter()
    schedule_rotations([meter], by="test")
    with pytest.raises(DeviceError, match="already has a rotation open"):
        schedule_rotations([meter], by="test")
    with pytest.raises(DeviceError, match="only active meters rotate"):
        schedule_rotations([make_meter()], by="test")


@pytest.mark.django_db
def test_cancel_and_decommission_close_the_exchange(active_meter):
    meter, _, key_id = active_meter()
    [rotation] = schedule_rotations([meter], by="test")
    rekey_init(rotation, now=timezone.now())
    cancel_rotation(rotation, by="test")
    rotation.refresh_from_db()
    assert rotation.state == RotationState.CANCELLED and rotation.wrapped_ephemeral is None
    assert _states(meter) == {key_id: KeyState.ACTIVE}

    other, _, _ = active_meter()
    [rotation] = schedule_rotations([other], by="test")
    rekey_init(rotation, now=timezone.now())
    decommission_meter(other, by="test", reason="end of life")
    rotation.refresh_from_db()
    assert rotation.state == RotationState.CANCELLED and rotation.wrapped_ephemeral is None
    assert set(_states(other).values()) == {KeyState.DESTROYED}
    assert not KeyRotation.objects.filter(meter=other, state=RotationState.INIT_SENT).exists()
