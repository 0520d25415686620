"""Cases, dispatch with the S12 caps and a second approver, the engineers' own-jobs-only pages,
and verified SD-card uploads (refused uploads store nothing)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.roles import FIELD_ENGINEER, REVENUE_PROTECTION
from audit.models import AuditEvent, Outcome
from audit.services import record
from fraud.models import (
    Absence,
    Case,
    CaseState,
    Cause,
    ReadingsUpload,
    Resolution,
    Severity,
    WorkOrder,
    WorkOrderState,
)
from fraud.services import (
    FraudError,
    accept_upload,
    approve,
    cancel,
    dispatch,
    record_visit,
    transition,
)
from readings.models import Reading, ReadingConflict, Source
from readings.services import datetime_to_hour
from testing.audit_locks import (
    run_blocked_before_the_audit_chain,
    run_while_a_concurrent_request_holds_the_cap,
    run_with_the_audit_chain_held,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def people(make_staff, fraud_roles):
    analyst, analyst_dev = make_staff("analyst@example.com", roles=[REVENUE_PROTECTION])
    second, second_dev = make_staff("second@example.com", roles=[REVENUE_PROTECTION])
    alice, alice_dev = make_staff("alice@example.com", roles=[FIELD_ENGINEER])
    bob, bob_dev = make_staff("bob@example.com", roles=[FIELD_ENGINEER])
    return {
        "analyst": (analyst, analyst_dev),
        "second": (second, second_dev),
        "alice": (alice, alice_dev),
        "bob": (bob, bob_dev),
    }


@pytest.fixture
def open_case(premises_meter, registered_key):
    def make(cause=Cause.CONSUMPTION_DROP) -> Case:
        meter = premises_meter(signing_public_key=registered_key)
        now = timezone.now()
        return Case.objects.create(
            meter=meter,
            cause=cause,
            severity=Severity.HIGH,
            summary="Use down 80%",
            evidence={"chart": {"labels": ["2026-11-01"], "datasets": [{"data": [1]}]}},
            opened_at=now,
            last_detected_at=now,
        )

    return make


def test_dispatch_visit_and_close_walk_the_audited_state_machine(people, open_case):
    analyst, alice = people["analyst"][0], people["alice"][0]
    case, now = open_case(), timezone.now()
    order = dispatch(case, alice, by=analyst, now=now)
    case.refresh_from_db()
    assert order.state == WorkOrderState.ASSIGNED and case.state == CaseState.DISPATCHED
    record_visit(order, by=alice, outcome=Resolution.TAMPER_CONFIRMED, notes="bypass", now=now)
    case.refresh_from_db()
    assert (case.state, case.resolution) == (CaseState.RESOLVED, Resolution.TAMPER_CONFIRMED)
    transition(case, CaseState.CLOSED, by=analyst, now=now)
    with pytest.raises(FraudError):
        transition(case, CaseState.OPEN, by=analyst, now=now)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"fraud.dispatched", "fraud.visit_recorded", "fraud.case_resolved"} <= actions
    assert "fraud.case_closed" in actions
    assert [e.to_state for e in case.history.all()] == ["dispatched", "resolved", "closed"]


def test_only_one_active_case_per_meter_and_cause(open_case):
    case = open_case()
    with pytest.raises(Exception):  # noqa: B017 - the partial unique constraint
        Case.objects.create(
            meter=case.meter,
            cause=case.cause,
            severity=1,
            summary="again",
            opened_at=case.opened_at,
            last_detected_at=case.opened_at,
        )


def test_dispatch_only_to_field_engineers(people, open_case):
    with pytest.raises(FraudError):
        dispatch(open_case(), people["second"][0], by=people["analyst"][0], now=timezone.now())


def test_dispatches_over_the_per_engineer_cap_wait_for_a_second_approver(
    people, open_case, settings
):
    settings.FRAUD_DISPATCHES_PER_ENGINEER_PER_DAY = 1
    analyst, second, alice = people["analyst"][0], people["second"][0], people["alice"][0]
    now = timezone.now()
    dispatch(open_case(), alice, by=analyst, now=now)
    case = open_case()
    held = dispatch(case, alice, by=analyst, now=now)
    case.refresh_from_db()
    assert held.state == WorkOrderState.AWAITING_APPROVAL and case.state == CaseState.OPEN
    assert AuditEvent.objects.filter(action="fraud.dispatch_held", outcome=Outcome.ALERT).exists()
    with pytest.raises(FraudError, match="second member"):
        approve(held, by=analyst, now=now)
    approve(held, by=second, now=now)
    held.refresh_from_db()
    case.refresh_from_db()
    assert held.state == WorkOrderState.ASSIGNED and held.approved_by == second
    assert case.state == CaseState.DISPATCHED


def test_fleet_dispatch_cap_holds_further_dispatches(people, open_case, settings):
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "fraud.dispatched": (1, 86400)}
    analyst = people["analyst"][0]
    now = timezone.now()
    assert dispatch(open_case(), people["alice"][0], by=analyst, now=now).state == "assigned"
    held = dispatch(open_case(), people["bob"][0], by=analyst, now=now)
    assert held.state == WorkOrderState.AWAITING_APPROVAL
    assert "cap" in held.held_because[0]
    assert AuditEvent.objects.filter(action="cap.exceeded", target="fraud.dispatched").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_fleet_dispatch_cap_counts_a_concurrent_dispatch(people, open_case, settings):
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "fraud.dispatched": (2, 86400)}
    analyst, alice = people["analyst"][0], people["alice"][0]
    first, case = open_case(), open_case()
    assigned = run_with_the_audit_chain_held(
        "fraud.dispatched", lambda: dispatch(first, alice, by=analyst, now=timezone.now())
    )
    assert assigned.state == WorkOrderState.ASSIGNED
    order = run_while_a_concurrent_request_holds_the_cap(
        "fraud.dispatched",
        lambda: dispatch(case, alice, by=analyst, now=timezone.now()),
        meanwhile=lambda: record("fraud.dispatched", actor=analyst, target="workorder:0"),
    )
    assert order.state == WorkOrderState.AWAITING_APPROVAL


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_per_engineer_cap_counts_a_concurrent_dispatch(people, open_case, settings):
    """The per-engineer count is taken under the fleet cap's lock too."""
    settings.FRAUD_DISPATCHES_PER_ENGINEER_PER_DAY = 1
    analyst, alice = people["analyst"][0], people["alice"][0]
    other, case = open_case(), open_case()
    now = timezone.now()
    order = run_while_a_concurrent_request_holds_the_cap(
        "fraud.dispatched",
        lambda: dispatch(case, alice, by=analyst, now=now),
        meanwhile=lambda: WorkOrder.objects.create(
            case=other, engineer=alice, created_by=analyst, created_at=now
        ),
    )
    assert order.state == WorkOrderState.AWAITING_APPROVAL
    assert "to this engineer" in order.held_because[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["approve", "cancel", "visit"])
def test_work_order_changes_lock_the_case_before_writing_audit_records(
    change, people, open_case, settings
):
    """A dispatch locks the case, then writes audit records (which lock the audit chain head).
    Approving, cancelling or visiting a work order of that case must take the two in the same
    order, or
    the two requests can deadlock: waiting for the case, it holds nothing of the chain."""
    analyst, second, alice = people["analyst"][0], people["second"][0], people["alice"][0]
    now = timezone.now()
    if change == "approve":
        settings.FRAUD_DISPATCHES_PER_ENGINEER_PER_DAY = 0  # held for a second approver
    order = dispatch(open_case(), alice, by=analyst, now=now)
    request = {  # each moves the case on (to dispatched; back to open; to resolved)
        "approve": lambda: approve(order, by=second, now=now),
        "cancel": lambda: cancel(order, by=analyst, now=now),
        "visit": lambda: record_visit(
            order, by=alice, outcome=Resolution.NO_FAULT, notes="", now=now
        ),
    }[change]
    changed = run_blocked_before_the_audit_chain(
        request, f"SELECT 1 FROM {Case._meta.db_table} WHERE id = %s FOR UPDATE", [order.case_id]
    )
    assert (
        changed.state
        == {
            "approve": WorkOrderState.ASSIGNED,
            "cancel": WorkOrderState.CANCELLED,
            "visit": WorkOrderState.VISITED,
        }[change]
    )


# --- Verified uploads ---


@pytest.fixture
def job(people, open_case):
    case = open_case()
    return dispatch(case, people["alice"][0], by=people["analyst"][0], now=timezone.now())


def _sms_readings(meter, hours_and_wh):
    from readings.services import hour_to_datetime

    Reading.objects.bulk_create(
        Reading(meter=meter, hour=hour_to_datetime(h), wh=wh, received_at=timezone.now())
        for h, wh in hours_and_wh
    )


def _nothing_stored(meter, before):
    assert Reading.objects.filter(meter=meter).count() == before
    assert not ReadingConflict.objects.filter(meter=meter).exists()
    assert not ReadingsUpload.objects.exists()


def test_a_verified_upload_fills_gaps_and_flags_differences(job, people, make_export):
    meter, alice = job.case.meter, people["alice"][0]
    base = datetime_to_hour(timezone.now()) - 48
    _sms_readings(meter, [(base, 1000), (base + 1, 1100), (base + 3, 1300)])
    export = make_export(meter.number, [(base + i, 1000 + 100 * i) for i in range(6)])
    # The meter's SD card says hour base+3 was 1300 (agrees); make one SMS value differ.
    Reading.objects.filter(meter=meter, wh=1100).update(wh=1111)
    upload = accept_upload(job, export, by=alice, now=timezone.now())
    assert (upload.readings, upload.inserted, upload.duplicates, upload.conflicts) == (6, 3, 2, 1)
    stored = dict(Reading.objects.filter(meter=meter).values_list("wh", "source"))
    assert stored[1111] == Source.SMS  # never silently overwritten
    assert stored[1200] == Source.UPLOAD
    conflict = ReadingConflict.objects.get(meter=meter)
    assert (conflict.stored_wh, conflict.received_wh, conflict.source) == (1111, 1100, 2)
    event = AuditEvent.objects.get(action="fraud.upload_verified")
    assert event.outcome == Outcome.ALERT and event.details["conflicts"] == 1


@pytest.mark.parametrize(
    ("name", "tamper", "message"),
    [
        ("forged", None, "does not verify"),
        ("truncated", lambda d: d[: len(d) // 2], "two lines"),
        ("truncated_signature", lambda d: d[:-10] + b"\n", "base64"),
        ("altered", lambda d: d.replace(b"[[", b"[[1", 1), "does not verify"),
        ("appended", lambda d: d + b"[1,2]\n", "two lines"),
        ("oversized", lambda d: d + b" " * (3 * 1024 * 1024), "larger"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(name, tamper, message, job, people, make_export):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    meter, alice = job.case.meter, people["alice"][0]
    base = datetime_to_hour(timezone.now()) - 48
    readings = [(base + i, 5000 + 10 * i) for i in range(24)]
    if name == "forged":
        data = make_export(meter.number, readings, key=Ed25519PrivateKey.generate())
    else:
        data = tamper(make_export(meter.number, readings))
    before = Reading.objects.filter(meter=meter).count()
    with pytest.raises(FraudError, match=message) as refused:
        accept_upload(job, data, by=alice, now=timezone.now())
    assert "Nothing was stored" in str(refused.value)
    _nothing_stored(meter, before)
    assert AuditEvent.objects.filter(action="fraud.upload_refused", outcome="denied").exists()


def test_an_export_from_another_meter_is_refused(job, people, make_export):
    data = make_export("OTHERMETER000000000000001", [(500_000, 10)])
    with pytest.raises(FraudError, match="another meter"):
        accept_upload(job, data, by=people["alice"][0], now=timezone.now())
    _nothing_stored(job.case.meter, 0)


def test_a_meter_without_a_registered_key_cannot_take_uploads(job, people, make_export):
    meter = job.case.meter
    meter.signing_public_key = None
    meter.save()
    with pytest.raises(FraudError, match="no registered signing key"):
        accept_upload(job, make_export(meter.number, [(500_000, 10)]), by=people["alice"][0],
                      now=timezone.now())  # fmt: skip
    _nothing_stored(meter, 0)


def test_readings_from_the_future_are_refused(job, people, make_export):
    meter = job.case.meter
    future = datetime_to_hour(timezone.now() + timedelta(days=2))
    with pytest.raises(FraudError, match="out of range"):
        accept_upload(job, make_export(meter.number, [(future, 10)]), by=people["alice"][0],
                      now=timezone.now())  # fmt: skip
    _nothing_stored(meter, 0)


# --- Pages ---


def test_engineer_sees_only_their_own_jobs_and_cannot_act_on_others(
    job, people, verified_client, make_export, client
):
    bob, bob_dev = people["bob"]
    web = verified_client(bob, bob_dev)
    listing = web.get("/staff/dispatch/")
    assert listing.status_code == 200
    assert job.case.meter.premises.address.encode() not in listing.content
    assert web.get(f"/staff/dispatch/{job.pk}/").status_code == 404
    visit = {"outcome": Resolution.NO_FAULT, "notes": "all fine"}
    assert web.post(f"/staff/dispatch/{job.pk}/", visit).status_code == 404
    export = make_export(job.case.meter.number, [(500_000, 10)])
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = {"export": SimpleUploadedFile("export.txt", export)}
    assert web.post(f"/staff/dispatch/{job.pk}/upload/", upload).status_code == 404
    job.refresh_from_db()
    assert job.state == WorkOrderState.ASSIGNED and not ReadingsUpload.objects.exists()
    denied = AuditEvent.objects.filter(action="fraud.job_access_denied", outcome="denied")
    assert denied.count() == 3 and denied.first().actor == bob


def test_engineer_works_their_own_job_on_the_dispatch_page(
    job, people, verified_client, make_export
):
    alice, alice_dev = people["alice"]
    web = verified_client(alice, alice_dev)
    listing = web.get("/staff/dispatch/")
    assert job.case.meter.premises.address.encode() in listing.content
    assert b"width=device-width" in listing.content  # the mobile viewport
    page = web.get(f"/staff/dispatch/{job.pk}/")
    assert page.status_code == 200 and b"Upload the SD-card export" in page.content
    from django.core.files.uploadedfile import SimpleUploadedFile

    base = datetime_to_hour(timezone.now()) - 10
    export = make_export(job.case.meter.number, [(base + i, 100 * i) for i in range(5)])
    response = web.post(
        f"/staff/dispatch/{job.pk}/upload/", {"export": SimpleUploadedFile("e.txt", export)}
    )
    assert response.status_code == 302
    assert ReadingsUpload.objects.get().inserted == 5
    bad = web.post(
        f"/staff/dispatch/{job.pk}/upload/",
        {"export": SimpleUploadedFile("e.txt", export.replace(b"[[", b"[[9", 1))},
        follow=True,
    )
    assert b"Upload refused" in bad.content and ReadingsUpload.objects.count() == 1
    web.post(f"/staff/dispatch/{job.pk}/", {"outcome": Resolution.METER_FAULT, "notes": "dead"})
    job.refresh_from_db()
    assert job.state == WorkOrderState.VISITED and job.outcome == Resolution.METER_FAULT


def test_revenue_protection_pages(job, people, verified_client):
    analyst, analyst_dev = people["analyst"]
    web = verified_client(analyst, analyst_dev)
    listing = web.get("/staff/fraud/", {"severity": Severity.HIGH, "cause": "consumption_drop"})
    assert listing.status_code == 200 and job.case.summary.encode() in listing.content
    empty = web.get("/staff/fraud/", {"cause": "tamper"})
    assert job.case.summary.encode() not in empty.content
    Absence.objects.create(
        meter=job.case.meter,
        declared_by=analyst,
        first_day=date(2026, 11, 2),
        last_day=date(2026, 11, 15),
        note="visiting family",
        declared_at=timezone.now(),
    )
    detail = web.get(f"/staff/fraud/cases/{job.case_id}/")
    assert detail.status_code == 200 and b'id="evidence-chart"' in detail.content
    assert b"2026-11-02 to 2026-11-15 (visiting family)" in detail.content
    assert b"vendor/chartjs/chart.umd" in detail.content
    meter_page = web.get(f"/staff/fraud/meters/{job.case.meter_id}/")
    assert meter_page.status_code == 200 and b'id="meter-chart"' in meter_page.content
    web.post(f"/staff/fraud/cases/{job.case_id}/note/", {"text": "called the customer"})
    assert job.case.history.filter(note="called the customer").exists()


def test_field_engineers_cannot_open_revenue_protection_pages(job, people, verified_client):
    alice, alice_dev = people["alice"]
    web = verified_client(alice, alice_dev)
    assert web.get("/staff/fraud/").status_code == 403
    assert web.post(f"/staff/fraud/cases/{job.case_id}/close/").status_code == 403
