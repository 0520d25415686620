"""S7: a meter silent beyond its schedule raises an alert, closed when it speaks again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from devices.models import Meter, MeterAlert
from smsgateway.alerts import flag_silent_meters

from .conftest import hours_back


@pytest.mark.django_db
def test_a_silent_meter_is_flagged_once_and_cleared_when_heard(test_meter, post_sms, settings):
    settings.METER_SILENCE_HOURS = 18
    quiet, chatty = test_meter(), test_meter()
    now = timezone.now()
    Meter.objects.filter(pk=quiet.meter.pk).update(last_message_at=now - timedelta(hours=19))
    Meter.objects.filter(pk=chatty.meter.pk).update(last_message_at=now - timedelta(hours=11))
    assert flag_silent_meters(now=now) == 1
    assert flag_silent_meters(now=now) == 0  # already open: no duplicate alert
    alert = MeterAlert.objects.get()
    assert alert.meter_id == quiet.meter.pk and alert.kind == "silent"
    assert AuditEvent.objects.filter(action="devices.alert_silent").count() == 1

    post_sms(quiet.msisdn, quiet.report(hours_back(2)))
    alert.refresh_from_db()
    assert alert.closed_at is not None
