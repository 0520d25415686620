"""S12: mass critical operations beyond their cap are stopped whole and raise an alert."""

import pytest

from audit.caps import CapExceeded
from audit.models import AuditEvent, Outcome
from audit.services import record
from devices.models import KeyRotation, MeterStatus
from devices.services import issue_bundle, schedule_rotations, suspend_meters
from testing.audit_locks import (
    run_while_a_concurrent_request_holds_the_cap,
    run_with_the_audit_chain_held,
)


@pytest.mark.django_db
def test_a_mass_rotation_over_the_cap_is_refused_whole(
    active_meter, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.ADMINS = [("Security", "security@example.org")]
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "devices.rotation_scheduled": (3, 3600)}
    meters = [active_meter()[0] for _ in range(4)]
    # The alert is mailed once it is committed (here: the test's transaction stays open).
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CapExceeded):
        schedule_rotations(meters, by="mass-rotator")
    assert KeyRotation.objects.count() == 0
    alert = AuditEvent.objects.get(action="cap.exceeded")
    assert alert.outcome == Outcome.ALERT and alert.target == "devices.rotation_scheduled"
    assert alert.details["requested"] == 4
    assert "Anomaly cap" in mailoutbox[-1].subject


@pytest.mark.django_db
def test_the_cap_counts_recent_actions_across_requests(active_meter, settings):
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "devices.rotation_scheduled": (3, 3600)}
    meters = [active_meter()[0] for _ in range(4)]
    schedule_rotations(meters[:2], by="a")
    schedule_rotations(meters[2:3], by="b")
    with pytest.raises(CapExceeded):
        schedule_rotations(meters[3:], by="c")
    assert KeyRotation.objects.count() == 3


@pytest.mark.django_db
def test_mass_suspension_and_bundle_downloads_are_capped(make_meter, active_meter, settings):
    settings.ANOMALY_CAPS = {
        **settings.ANOMALY_CAPS,
        "devices.meter_suspended": (2, 86400),
        "devices.bundle_issued": (2, 3600),
    }
    meter, _, _ = active_meter()  # issues the first bundle
    issue_bundle(make_meter(), by="test")  # the second
    with pytest.raises(CapExceeded):
        issue_bundle(make_meter(), by="test")
    others = [make_meter() for _ in range(2)]
    with pytest.raises(CapExceeded):
        suspend_meters([meter, *others], by="test", reason="bulk")
    meter.refresh_from_db()
    assert meter.status == MeterStatus.ACTIVE
    assert AuditEvent.objects.filter(action="cap.exceeded").count() == 2


@pytest.mark.django_db
def test_a_mass_decommission_over_the_cap_destroys_nothing(active_meter, settings):
    from devices.models import KeyState
    from devices.services import decommission_meters

    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "devices.meter_decommissioned": (2, 86400)}
    meters = [active_meter()[0] for _ in range(3)]
    with pytest.raises(CapExceeded):
        decommission_meters(meters, by="test", reason="bulk")
    for meter in meters:
        meter.refresh_from_db()
        assert meter.status == MeterStatus.ACTIVE
        assert meter.keys.get().state == KeyState.ACTIVE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cap_checks_wait_for_a_concurrent_request_to_commit(make_meter, settings):
    """Two requests at once cannot both slip under a cap: the check holds a lock per action
    until the guarded records are committed, and so counts the other request's."""
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "devices.bundle_issued": (2, 3600)}
    meter = make_meter()
    run_with_the_audit_chain_held(
        "devices.bundle_issued", lambda: issue_bundle(meter, by="first request")
    )
    with pytest.raises(CapExceeded):
        run_while_a_concurrent_request_holds_the_cap(
            "devices.bundle_issued",
            lambda: issue_bundle(meter, by="second request"),
            meanwhile=lambda: record("devices.bundle_issued", actor="first request"),
        )
    assert not AuditEvent.objects.filter(
        action="devices.bundle_issued", actor_label="second request"
    ).exists()
