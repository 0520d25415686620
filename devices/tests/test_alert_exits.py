"""Alerts that do not clear by themselves (tamper, failed-authentication bursts, a changed
signing key) are closed by a security admin in the admin, audited."""

import pytest
from django.utils import timezone

from accounts.roles import PROVISIONING, SECURITY_ADMIN
from audit.models import AuditEvent
from devices.models import AlertKind, MeterAlert
from devices.services import open_alert

ALERTS = "/admin/devices/meteralert/"


def _close(client, alerts):
    return client.post(
        ALERTS, {"action": "close", "_selected_action": [a.pk for a in alerts]}, follow=True
    )


@pytest.mark.django_db
def test_a_security_admin_closes_a_tamper_alert_and_it_is_audited(
    active_meter, make_staff, verified_client
):
    meter, _, _ = active_meter()
    open_alert(meter, AlertKind.TAMPER, now=timezone.now(), details={"events": ["tamper"]})
    alert = MeterAlert.objects.get(meter=meter)
    user, device = make_staff("sec@utility.example", roles=[SECURITY_ADMIN])
    client = verified_client(user, device)
    assert "Closed 1 alerts." in _close(client, [alert]).content.decode()

    alert.refresh_from_db()
    assert alert.closed_at is not None and alert.closed_by == "sec@utility.example"
    event = AuditEvent.objects.get(action="devices.alert_closed")
    assert event.details["kind"] == "tamper" and event.actor_label == "sec@utility.example"
    # Closed once: a second request changes nothing and records nothing.
    assert "Closed 0 alerts." in _close(client, [alert]).content.decode()
    assert AuditEvent.objects.filter(action="devices.alert_closed").count() == 1
    # The next tamper report opens a new alert.
    assert open_alert(meter, AlertKind.TAMPER, now=timezone.now(), details={})


@pytest.mark.django_db
def test_provisioning_sees_alerts_but_cannot_close_them(
    active_meter, make_staff, verified_client, client
):
    meter, _, _ = active_meter()
    open_alert(meter, AlertKind.AUTH_FAILURES, now=timezone.now(), details={"failures": 9})
    user, device = make_staff("prov@utility.example", roles=[PROVISIONING])
    verified_client(user, device)
    form = client.get(ALERTS).context["action_form"]
    assert form is None or "close" not in dict(form.fields["action"].choices)
    _close(client, MeterAlert.objects.all())
    assert MeterAlert.objects.get().closed_at is None
