"""Provisioning bundles: issued once per key, in the format the meter agent loads, audited."""

import json

import pytest

from accounts.roles import PROVISIONING
from audit.models import AuditEvent
from devices.models import KeyState, MeterKey, MeterStatus
from meteragent.bundle import BundleError, parse_bundle


@pytest.fixture
def provisioner(client, make_staff, verified_client):
    user, device = make_staff("prov@example.org", roles=[PROVISIONING])
    verified_client(user, device)
    return user


@pytest.mark.django_db
def test_bundle_download_issues_a_key_once_and_is_audited(client, provisioner, make_meter):
    meter = make_meter()
    assert client.get(f"/admin/devices/meter/{meter.pk}/bundle/").status_code == 200
    response = client.post(f"/admin/devices/meter/{meter.pk}/bundle/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "attachment" in response["Content-Disposition"]
    bundle = parse_bundle(response.content)
    assert bundle.meter_number == meter.number and bundle.key_id == 1
    meter.refresh_from_db()
    assert meter.status == MeterStatus.PROVISIONED
    event = AuditEvent.objects.get(action="devices.bundle_issued")
    assert event.actor == provisioner and event.details["key_id"] == 1
    assert bundle.root_key.hex() not in json.dumps(event.details)


@pytest.mark.django_db
def test_a_second_download_needs_a_new_key_and_withdraws_the_first(client, provisioner, make_meter):
    meter = make_meter()
    first = parse_bundle(client.post(f"/admin/devices/meter/{meter.pk}/bundle/").content)
    second = parse_bundle(client.post(f"/admin/devices/meter/{meter.pk}/bundle/").content)
    assert (first.key_id, second.key_id) == (1, 2)
    assert first.root_key != second.root_key
    old = MeterKey.objects.get(meter=meter, key_id=1)
    assert old.state == KeyState.WITHDRAWN and bytes(old.wrapped_key) == b""
    assert MeterKey.objects.get(meter=meter, key_id=2).state == KeyState.PENDING


@pytest.mark.django_db
def test_a_meter_in_service_gets_no_bundle(client, provisioner, active_meter):
    meter, _, _ = active_meter()
    response = client.post(f"/admin/devices/meter/{meter.pk}/bundle/", follow=True)
    assert b"rotation, not by a new bundle" in response.content
    assert MeterKey.objects.filter(meter=meter).count() == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.replace(b'"version": 1', b'"version": 2'),
        lambda b: b.replace(b'"format": "meteragent-bundle"', b'"format": "x"'),
        lambda b: b[:-20],
        lambda b: b.replace(b'"key_id": 1', b'"key_id": -1'),
        lambda b: b"\xff" + b,
        lambda b: b + b" " * 5000,
    ],
)
@pytest.mark.django_db
def test_a_damaged_bundle_is_refused_with_a_reason(make_meter, mutate):
    from devices.services import issue_bundle

    data = issue_bundle(make_meter(), by="test")
    with pytest.raises(BundleError):
        parse_bundle(mutate(data))
