"""Reads for the staff operations home: work that stopped, or waited too long, and needs a
person. Each row of the lifecycle table in docs/operations.md whose timeout ends with staff
has its entry here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccountDeletionRequest
from billing.models import BillingRun, RunStatus
from devices.models import KeyRotation, Meter, MeterStatus, RotationState
from fraud.models import WorkOrder, WorkOrderState
from smsgateway.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus

# A stored inbound message older than this has been missed by the drains and the sweep.
INBOUND_STUCK_AFTER = timedelta(minutes=10)
# A monthly billing run still running after this long has stopped.
BILLING_RUN_STUCK_AFTER = timedelta(hours=2)
# A dispatch held by the cap should find its second approver within a working day.
APPROVAL_WAITING_AFTER = timedelta(days=1)
# A field visit not recorded within two weeks of the assignment.
VISIT_WAITING_AFTER = timedelta(days=14)
# A meter whose bundle was issued and that has not spoken since: not installed, or its key
# was never loaded.
INSTALL_WAITING_AFTER = timedelta(days=30)
# Deletion requests are answered within the statutory month; a week gives staff time to.
DELETION_WAITING_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class StuckItems:
    """One kind of stopped work: how many, since when, and the admin list that acts on it."""

    label: str
    count: int
    oldest: datetime | None
    url: str
    action: str
    permission: str  # who may see it: the view permission of the admin list it links


def _item(label: str, rows: QuerySet, since: str, admin: str, query: str, action: str):
    found = rows.aggregate(count=Count("pk"), oldest=Min(since))  # one query per kind
    app_label, model = admin.split("_", 1)
    return StuckItems(
        label=label,
        count=found["count"],
        oldest=found["oldest"],
        url=f"{reverse(f'admin:{admin}_changelist')}?{query}",
        action=action,
        permission=f"{app_label}.view_{model}",
    )


def stuck_items(*, now: datetime | None = None) -> list[StuckItems]:
    """Everything a lifecycle left waiting for staff, with counts and links (the operations
    home shows those with a count above zero)."""
    now = now or timezone.now()
    running_since = now - BILLING_RUN_STUCK_AFTER
    return [
        _item(
            "Key rotations out of attempts",
            KeyRotation.objects.filter(state=RotationState.STALLED),
            "last_sent_at",
            "devices_keyrotation",
            "state__exact=stalled",
            "Cancel, or restart once the meter is heard again",
        ),
        _item(
            "Meters provisioned but never heard",
            Meter.objects.filter(
                status=MeterStatus.PROVISIONED, status_changed_at__lt=now - INSTALL_WAITING_AFTER
            ),
            "status_changed_at",
            "devices_meter",
            "status__exact=provisioned",
            "Check the installation; issue a new bundle or decommission",
        ),
        _item(
            "Outbound SMS out of retries",
            OutboundMessage.objects.filter(status=OutboundStatus.FAILED),
            "created_at",
            "smsgateway_outboundmessage",
            "status__exact=failed",
            "Send again once the gateway is back",
        ),
        _item(
            "Inbound SMS waiting unprocessed",
            InboundMessage.objects.filter(
                status=InboundStatus.RECEIVED, received_at__lt=now - INBOUND_STUCK_AFTER
            ),
            "received_at",
            "smsgateway_inboundmessage",
            "status__exact=received",
            "Check the sms workers and beat",
        ),
        _item(
            "Billing runs failed or stuck",
            BillingRun.objects.filter(status=RunStatus.COMPLETED_WITH_ERRORS)
            | BillingRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=running_since),
            "started_at",
            "billing_billingrun",
            "status__exact=errors",
            "Start the run again for the failed accounts",
        ),
        _item(
            "Dispatches waiting for a second approver",
            WorkOrder.objects.filter(
                state=WorkOrderState.AWAITING_APPROVAL,
                created_at__lt=now - APPROVAL_WAITING_AFTER,
            ),
            "created_at",
            "fraud_workorder",
            "state__exact=awaiting_approval",
            "Approve or cancel the work order",
        ),
        _item(
            "Field visits not recorded",
            WorkOrder.objects.filter(
                state=WorkOrderState.ASSIGNED, created_at__lt=now - VISIT_WAITING_AFTER
            ),
            "created_at",
            "fraud_workorder",
            "state__exact=assigned",
            "Ask the engineer, or cancel and dispatch again",
        ),
        _item(
            "Account deletion requests waiting",
            AccountDeletionRequest.objects.filter(
                processed_at__isnull=True, requested_at__lt=now - DELETION_WAITING_AFTER
            ),
            "requested_at",
            "accounts_accountdeletionrequest",
            "processed_at__isnull=True",
            "Close the accounts",
        ),
    ]
