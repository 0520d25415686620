"""What the staff operations home shows. Every panel is a handful of set-based queries over
indexed columns, so the page stays fast for a large fleet (bench/bench_staff_home.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Min, Q

from audit.models import AuditEvent
from billing import conf as billing_conf
from billing.models import BillingAccount, BillingRun
from billing.models import RunStatus as BillingRunStatus
from billing.services import add_months
from devices.models import OPEN_ROTATION_STATES, KeyRotation, Meter, MeterStatus
from fraud.models import ACTIVE_CASE_STATES, Case, WorkOrder
from fraud.selectors import severity_counts
from smsgateway.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus

from .models import DailyReadRate, StaffRun

CHART_DAYS = 30
SIGNAL_DAYS = 7
CAP_EXCEEDED = "cap.exceeded"
LOCKOUT_ACTIONS = ("login.locked_out", "customer.login_locked")


# --- fleet health ---------------------------------------------------------------------------


def _silent(now: datetime) -> Q:
    """Active and not heard from within the silence threshold."""
    cutoff = now - timedelta(hours=settings.METER_SILENCE_HOURS)
    return Q(status=MeterStatus.ACTIVE) & (
        Q(last_message_at__lt=cutoff) | Q(last_message_at__isnull=True)
    )


def meter_counts(*, now: datetime) -> tuple[dict[str, int], int]:
    """Meters by status (those with any), and how many active ones are silent: one pass."""
    counts = Meter.objects.aggregate(
        **{status.value: Count("id", filter=Q(status=status)) for status in MeterStatus},
        silent=Count("id", filter=_silent(now)),
    )
    silent = counts.pop("silent")
    return {status: n for status, n in counts.items() if n}, silent


def silent_meters(*, now: datetime, limit: int = 10) -> list[Meter]:
    """The longest silent active meters first."""
    never_first = F("last_message_at").asc(nulls_first=True)
    return list(Meter.objects.filter(_silent(now)).order_by(never_first)[:limit])


def recently_heard(*, limit: int = 5) -> list[Meter]:
    return list(
        Meter.objects.filter(last_message_at__isnull=False).order_by("-last_message_at")[:limit]
    )


def rejected_by_reason(*, now: datetime) -> list[tuple[str, int]]:
    rows = (
        InboundMessage.objects.filter(
            status=InboundStatus.REJECTED, received_at__gte=now - timedelta(days=SIGNAL_DAYS)
        )
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return list(rows)


def outbound_queue() -> dict:
    waiting = OutboundMessage.objects.filter(
        status__in=(OutboundStatus.PENDING, OutboundStatus.CAPPED)
    ).aggregate(depth=Count("id"), oldest=Min("created_at"))
    return waiting


def rotations_in_progress() -> int:
    return KeyRotation.objects.filter(state__in=OPEN_ROTATION_STATES).count()


def chart_days(*, now: datetime, days: int = CHART_DAYS) -> list[date]:
    """The last `days` complete UTC days, oldest first."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


def read_rates(*, now: datetime, days: int = CHART_DAYS) -> list[DailyReadRate]:
    """The stored read success rate of the last `days` complete UTC days (counted by
    runs.count_read_rates, hourly from beat)."""
    return list(DailyReadRate.objects.filter(day__in=chart_days(now=now, days=days)))


# --- billing --------------------------------------------------------------------------------


@dataclass
class DueRun:
    period_start: date
    period_end: date
    due_on: date


def next_due_run(*, today: date) -> DueRun | None:
    """The next period the hourly beat will bill: the earliest period end, over the open
    accounts' cycle days, that is not yet BILLING_RUN_DELAY_DAYS in the past."""
    delay = timedelta(days=billing_conf.setting("BILLING_RUN_DELAY_DAYS"))
    cycle_days = (
        BillingAccount.objects.filter(Q(closed_on__isnull=True) | Q(closed_on__gt=today))
        .values_list("cycle_day", flat=True)
        .distinct()
    )
    earliest_end = today - delay
    candidates = []
    for cycle_day in cycle_days:
        end = earliest_end.replace(day=cycle_day)
        if end < earliest_end:
            end = add_months(end, 1)
        candidates.append(DueRun(add_months(end, -1), end, end + delay))
    return min(candidates, key=lambda due: due.due_on, default=None)


def default_billing_period(*, today: date, due: DueRun | None) -> date:
    """The period a member of staff most likely wants to run: the one before the next due."""
    if due is None:
        return add_months(today.replace(day=1), -1)
    return add_months(due.period_start, -1)


def recent_billing_runs(limit: int = 5) -> list[BillingRun]:
    return list(BillingRun.objects.order_by("-started_at")[:limit])


def failed_billing_runs() -> int:
    return BillingRun.objects.filter(
        Q(status=BillingRunStatus.COMPLETED_WITH_ERRORS) | Q(failed__gt=0)
    ).count()


# --- revenue protection ---------------------------------------------------------------------


def open_cases_by_severity() -> dict[int, int]:
    return severity_counts()


def recent_cases(*, limit: int = 5) -> list[Case]:
    return list(
        Case.objects.filter(state__in=ACTIVE_CASE_STATES)
        .select_related("meter")
        .order_by("-severity", "-opened_at")[:limit]
    )


def dispatches_today(*, now: datetime) -> int:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return WorkOrder.objects.filter(created_at__gte=start).count()


# --- security -------------------------------------------------------------------------------


def last_chain_verification() -> AuditEvent | None:
    return AuditEvent.objects.filter(action="audit.chain_verified").order_by("-created_at").first()


def security_signals(*, now: datetime) -> dict[str, int]:
    counts = dict(
        AuditEvent.objects.filter(
            action__in=(CAP_EXCEEDED, *LOCKOUT_ACTIONS),
            created_at__gte=now - timedelta(days=SIGNAL_DAYS),
        )
        .values_list("action")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "caps_exceeded": counts.get(CAP_EXCEEDED, 0),
        "lockouts": sum(counts.get(action, 0) for action in LOCKOUT_ACTIONS),
    }


# --- runs started from the staff pages -------------------------------------------------------


def latest_runs() -> dict[str, StaffRun]:
    """The newest run of each kind."""
    runs = StaffRun.objects.order_by("kind", "-requested_at").distinct("kind")
    return {run.kind: run for run in runs.select_related("requested_by")}
