import pytest
from django.utils import timezone

from audit.models import AuditEvent
from devices.models import KeyState, MeterReplacement, MeterStatus, Premises
from devices.services import (
    DeviceError,
    decommission_meter,
    issue_bundle,
    reactivate_meter,
    replace_meter,
    suspend_meters,
)


@pytest.mark.django_db
def test_suspend_and_reactivate(active_meter):
    meter, _, _ = active_meter()
    suspend_meters([meter], by="test", reason="fraud case 12")
    meter.refresh_from_db()
    assert meter.status == MeterStatus.SUSPENDED
    reactivate_meter(meter, by="test", reason="case closed")
    meter.refresh_from_db()
    assert meter.status == MeterStatus.ACTIVE
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "devices.meter_suspended" in actions and "devices.meter_reactivated" in actions


@pytest.mark.django_db
def test_decommission_destroys_keys_and_is_final(active_meter):
    meter, _, _ = active_meter()
    decommission_meter(meter, by="test", reason="end of life")
    meter.refresh_from_db()
    assert meter.status == MeterStatus.DECOMMISSIONED
    key = meter.keys.get()
    assert key.state == KeyState.DESTROYED and bytes(key.wrapped_key) == b""
    with pytest.raises(DeviceError):
        reactivate_meter(meter, by="test", reason="oops")
    with pytest.raises(DeviceError):
        issue_bundle(meter, by="test")


@pytest.mark.django_db
def test_a_registered_meter_cannot_be_suspended(make_meter):
    with pytest.raises(DeviceError, match="cannot become suspended"):
        suspend_meters([make_meter()], by="test", reason="no")


@pytest.mark.django_db
def test_replacement_links_final_and_first_readings_at_the_premises(active_meter, make_meter):
    old, _, _ = active_meter()
    old.premises = Premises.objects.create(reference="PRM-1", postcode="AB1 2CD")
    old.save()
    new = make_meter()
    replacement = replace_meter(
        old=old, new=new, old_final_wh=1_234_567, new_first_wh=3, at=timezone.now(), by="test"
    )
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == MeterStatus.DECOMMISSIONED
    assert new.premises == old.premises
    assert MeterReplacement.objects.get(new_meter=new) == replacement
    assert (replacement.old_final_wh, replacement.new_first_wh) == (1_234_567, 3)
    with pytest.raises(DeviceError):
        replace_meter(old=new, new=new, old_final_wh=1, new_first_wh=1, at=timezone.now(), by="t")
