"""The operations home's list of stopped and overdue work: each lifecycle's timeout that ends
with staff is counted there, with the admin list that acts on it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import AccountDeletionRequest
from accounts.roles import BILLING, FIELD_ENGINEER, REVENUE_PROTECTION, SECURITY_ADMIN
from billing.models import BillingRun, RunStatus
from devices.models import Meter, RotationState
from devices.services import issue_bundle, schedule_rotations, stall_rotation
from fraud.models import Case, Cause, Severity, WorkOrder, WorkOrderState
from operations.stuck import stuck_items
from smsgateway.models import InboundMessage, OutboundMessage, OutboundStatus
from testing.customers import make_customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _by_label(now):
    return {item.label: item for item in stuck_items(now=now)}


def test_nothing_stopped_counts_nothing():
    assert {item.count for item in stuck_items()} == {0}


def _open_case(meter, *, now) -> Case:
    return Case.objects.create(
        meter=meter,
        cause=Cause.CONSUMPTION_DROP,
        severity=Severity.HIGH,
        summary="Use down 80%",
        opened_at=now,
        last_detected_at=now,
    )


def test_stopped_and_overdue_work_is_counted_with_links(test_meter, make_meter, make_staff):
    now = timezone.now()
    meter = test_meter()
    [rotation] = schedule_rotations([meter.meter], by="test")
    rotation.state = RotationState.INIT_SENT
    rotation.save(update_fields=["state"])
    stall_rotation(rotation, now=now)
    for n, status in enumerate([OutboundStatus.FAILED, OutboundStatus.FAILED, OutboundStatus.SENT]):
        OutboundMessage.objects.create(
            meter=meter.meter,
            msisdn=meter.msisdn,
            kind="ack",
            payload=b"x",
            key_id=1,
            counter=n + 1,
            status=status,
            created_at=now,
            next_attempt_at=now,
        )
    for n, age in enumerate([timedelta(minutes=30), timedelta(minutes=1)]):
        InboundMessage.objects.create(
            gateway="kannel",
            dedupe_key=f"k{n}",
            sender=meter.msisdn,
            payload=b"x",
            received_at=now - age,
        )
    BillingRun.objects.create(
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        status=RunStatus.COMPLETED_WITH_ERRORS,
        started_at=now - timedelta(days=30),
        started_by="test",
    )
    BillingRun.objects.create(
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        status=RunStatus.RUNNING,
        started_at=now - timedelta(hours=5),
        started_by="test",
    )
    analyst, _ = make_staff("analyst@example.com", roles=[REVENUE_PROTECTION])
    engineer, _ = make_staff("alice@example.com", roles=[FIELD_ENGINEER])
    for state, age in [
        (WorkOrderState.AWAITING_APPROVAL, timedelta(days=2)),
        (WorkOrderState.ASSIGNED, timedelta(days=20)),
    ]:
        WorkOrder.objects.create(
            case=_open_case(make_meter(), now=now),
            engineer=engineer,
            created_by=analyst,
            state=state,
            created_at=now - age,
        )
    uninstalled = make_meter()
    issue_bundle(uninstalled, by="test")
    Meter.objects.filter(pk=uninstalled.pk).update(status_changed_at=now - timedelta(days=31))
    issue_bundle(make_meter(), by="test")  # provisioned today: not overdue
    AccountDeletionRequest.objects.create(
        user=make_customer("leaving@example.com"),
        email="leaving@example.com",
        requested_at=now - timedelta(days=8),
    )

    items = _by_label(now)
    assert {label: item.count for label, item in items.items()} == {
        "Key rotations out of attempts": 1,
        "Meters provisioned but never heard": 1,
        "Outbound SMS out of retries": 2,
        "Inbound SMS waiting unprocessed": 1,  # the fresh one is still in the queue
        "Billing runs failed or stuck": 2,
        "Dispatches waiting for a second approver": 1,
        "Field visits not recorded": 1,
        "Account deletion requests waiting": 1,
    }
    assert items["Key rotations out of attempts"].url == (
        "/admin/devices/keyrotation/?state__exact=stalled"
    )
    assert items["Outbound SMS out of retries"].url == (
        "/admin/smsgateway/outboundmessage/?status__exact=failed"
    )
    assert items["Account deletion requests waiting"].oldest == now - timedelta(days=8)
    # A day later nothing new is overdue, and what was stays counted.
    assert _by_label(now + timedelta(days=1))["Field visits not recorded"].count == 1


def test_the_home_lists_stuck_work_to_the_roles_that_may_act_on_it(
    test_meter,
    make_staff,
    verified_client,
):
    meter = test_meter()
    [rotation] = schedule_rotations([meter.meter], by="test")
    rotation.state = RotationState.INIT_SENT
    rotation.save(update_fields=["state"])
    stall_rotation(rotation, now=timezone.now())

    security, security_device = make_staff("security@example.org", roles=[SECURITY_ADMIN])
    page = verified_client(security, security_device).get("/staff/").content.decode()
    assert "Key rotations out of attempts" in page
    assert "/admin/devices/keyrotation/?state__exact=stalled" in page

    billing, billing_device = make_staff("billing@example.org", roles=[BILLING])
    page = verified_client(billing, billing_device).get("/staff/").content.decode()
    assert "Key rotations out of attempts" not in page  # billing staff cannot act on keys
