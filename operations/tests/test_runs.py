"""Billing runs and scans started from the staff pages: queued, carried out, audited, and never
two of a kind at once."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import BILLING, FIELD_ENGINEER, REVENUE_PROTECTION
from audit.models import AuditEvent, Outcome
from billing.models import BillingRun, Invoice
from billing.models import RunStatus as BillingRunStatus
from operations import runs, services
from operations.models import RunKind, RunStatus, StaffRun
from testing.billing import write_readings

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_clerk(make_staff, verified_client):
    user, device = make_staff("bill@example.org", roles=[BILLING])
    return user, verified_client(user, device)


def test_a_billing_run_started_from_the_home_bills_the_period_and_is_audited(
    billing_clerk, make_tariff, make_account, django_capture_on_commit_callbacks
):
    user, client = billing_clerk
    tariff = make_tariff({"unit_price": Decimal("0.25")})
    _, meter = make_account(tariff, opened_on=date(2026, 1, 1))
    write_readings(meter, datetime(2026, 10, 1, tzinfo=UTC), 31 * 24 + 2, wh0=0, per_hour=500)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/staff/runs/billing/start/", {"period_start": "2026-10-01"})

    run = StaffRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/runs/{run.pk}/"
    assert run.status == RunStatus.FINISHED and run.requested_by == user
    assert run.result["accounts"] == 1 and run.total == 1
    # The staff run started the billing run the beat starts: chunks and a final tally.
    billing_run = BillingRun.objects.get(pk=run.result["billing_run"])
    assert billing_run.chunks.count() == 1 and billing_run.started_by == user.email
    assert billing_run.status == BillingRunStatus.COMPLETED and billing_run.invoices_issued == 1
    assert Invoice.objects.filter(period_start=date(2026, 10, 1)).count() == 1
    started = AuditEvent.objects.get(action="operations.run_started")
    finished = AuditEvent.objects.get(action="operations.run_finished")
    assert started.actor == user and started.details == {"period_start": "2026-10-01"}
    assert finished.outcome == Outcome.SUCCESS and finished.details["accounts"] == 1
    page = client.get(f"/staff/runs/{run.pk}/").content.decode()
    assert "Finished" in page and "accounts: 1" in page


def test_a_second_start_while_one_is_active_is_refused_with_a_clear_message(billing_clerk):
    user, client = billing_clerk
    active = StaffRun.objects.create(
        kind=RunKind.BILLING,
        status=RunStatus.RUNNING,
        requested_by=user,
        requested_at=timezone.now() - timedelta(minutes=3),
    )

    response = client.post(
        "/staff/runs/billing/start/", {"period_start": "2026-10-01"}, follow=True
    )

    assert StaffRun.objects.count() == 1
    assert "A billing run is already running" in response.content.decode()
    refused = AuditEvent.objects.get(action="operations.run_refused")
    assert refused.outcome == Outcome.DENIED and refused.details == {"active": active.pk}


def test_two_starts_at_once_cannot_both_queue(make_staff):
    user, _ = make_staff("bill@example.org", roles=[BILLING])
    StaffRun.objects.create(
        kind=RunKind.SCAN, status=RunStatus.QUEUED, requested_by=user, requested_at=timezone.now()
    )
    # The service itself relies on the database, not on a check the caller made first.
    with pytest.raises(services.RunRefused, match="already queued"):
        services.start_run(kind=RunKind.SCAN, by=user, now=timezone.now())


def test_a_finished_run_does_not_block_the_next(billing_clerk, django_capture_on_commit_callbacks):
    user, client = billing_clerk
    StaffRun.objects.create(
        kind=RunKind.BILLING,
        status=RunStatus.FINISHED,
        requested_by=user,
        requested_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/staff/runs/billing/start/", {"period_start": "2026-10-01"})
    assert StaffRun.objects.filter(status=RunStatus.FINISHED).count() == 2


@pytest.mark.parametrize("period", ["2026-10-30", "not a date", ""])
def test_a_period_the_run_would_refuse_is_refused_before_anything_is_queued(billing_clerk, period):
    _, client = billing_clerk
    response = client.post("/staff/runs/billing/start/", {"period_start": period}, follow=True)
    assert StaffRun.objects.count() == 0
    assert "billing period" in response.content.decode()


def test_a_scan_started_from_the_home_runs_the_detectors(
    make_staff, verified_client, django_capture_on_commit_callbacks
):
    user, device = make_staff("rp@example.org", roles=[REVENUE_PROTECTION])
    client = verified_client(user, device)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/staff/runs/scan/start/")

    run = StaffRun.objects.get()
    assert run.status == RunStatus.FINISHED
    assert set(run.result["detectors"]) >= {"consumption_drop", "silent"}
    assert AuditEvent.objects.filter(action="fraud.scan").exists()


@pytest.mark.parametrize(
    ("role", "kind"),
    [(BILLING, "scan"), (REVENUE_PROTECTION, "billing"), (FIELD_ENGINEER, "scan")],
)
def test_a_role_without_the_permission_cannot_start_a_run(make_staff, verified_client, role, kind):
    user, device = make_staff("someone@example.org", roles=[role])
    client = verified_client(user, device)
    response = client.post(f"/staff/runs/{kind}/start/", {"period_start": "2026-10-01"})
    assert response.status_code == 403
    assert not StaffRun.objects.exists()


def test_a_failing_run_is_marked_failed_and_audited(make_staff):
    user, _ = make_staff("bill@example.org", roles=[BILLING])
    # A period the billing service itself refuses, queued past the form's own check.
    queued = StaffRun.objects.create(
        kind=RunKind.BILLING,
        requested_by=user,
        requested_at=timezone.now(),
        parameters={"period_start": "2026-10-30"},
    )
    run = runs.execute_run(queued.pk)
    assert run.status == RunStatus.FAILED and "not a billing period" in run.message
    finished = AuditEvent.objects.get(action="operations.run_finished")
    assert finished.outcome == Outcome.FAILURE


def test_a_superuser_frees_a_run_whose_worker_died(make_staff, verified_client):
    user, device = make_staff("root@example.org", superuser=True)
    client = verified_client(user, device)
    stuck = StaffRun.objects.create(
        kind=RunKind.SCAN, status=RunStatus.RUNNING, requested_by=user, requested_at=timezone.now()
    )
    client.post(
        "/admin/operations/staffrun/",
        {"action": "mark_failed", "_selected_action": [stuck.pk]},
    )
    stuck.refresh_from_db()
    assert stuck.status == RunStatus.FAILED
    assert AuditEvent.objects.filter(action="operations.run_marked_failed").exists()
