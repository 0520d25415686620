"""Starting and executing staff runs: queued on Celery, progress on the run's row, audited."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from devices.models import Meter, MeterStatus
from readings.models import Reading

from . import launch
from .models import ACTIVE_RUN_STATES, DailyReadRate, RunKind, RunStatus, StaffRun
from .selectors import CHART_DAYS, chart_days
from .tasks import execute_run as execute_run_task

logger = logging.getLogger(__name__)


class RunRefused(Exception):
    """A run cannot start; the message says why, for the member of staff."""


def _parameters(kind: str, period_start: date | None) -> dict:
    if kind != RunKind.BILLING:
        return {}
    if period_start is None:
        raise RunRefused("Choose the billing period to run.")
    try:
        launch.validate_billing_period(period_start)
    except ValueError as exc:
        raise RunRefused(f"Not a billing period: {exc}.") from exc
    return {"period_start": period_start.isoformat()}


def start_run(*, kind: str, by, now: datetime, period_start: date | None = None) -> StaffRun:
    """Queue a run of `kind` for `by`. Refused while one of the same kind is queued or running
    (the database's partial unique constraint decides, so two clicks cannot both start one)."""
    if kind not in launch.LAUNCHERS:
        raise RunRefused(f"Unknown kind of run: {kind}.")
    parameters = _parameters(kind, period_start)
    try:
        with transaction.atomic():
            run = StaffRun.objects.create(
                kind=kind, requested_by=by, requested_at=now, parameters=parameters
            )
            record(
                "operations.run_started",
                actor=by,
                target=f"{kind}-run:{run.pk}",
                details=parameters,
            )
            transaction.on_commit(lambda: execute_run_task.delay(run_id=run.pk))
    except IntegrityError:
        active = StaffRun.objects.filter(kind=kind, status__in=ACTIVE_RUN_STATES).first()
        record(
            "operations.run_refused",
            actor=by,
            target=f"{kind}-run",
            outcome=Outcome.DENIED,
            details={"active": active.pk if active else None},
        )
        since = f" (started {active.requested_at:%Y-%m-%d %H:%M} UTC by {active.requested_by})"
        raise RunRefused(
            f"A {RunKind(kind).label.lower()} is already {active.status if active else 'active'}"
            f"{since if active else ''}; wait for it to finish."
        ) from None
    return run


def _report(run_id: int):
    def report(done: int, total: int, message: str) -> None:
        StaffRun.objects.filter(pk=run_id).update(done=done, total=total, message=message[:255])

    return report


def execute_run(run_id: int) -> StaffRun:
    """Run a queued run to its end (the Celery task); its outcome is recorded either way."""
    claimed = StaffRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    run = StaffRun.objects.select_related("requested_by").get(pk=run_id)
    if not claimed:  # a redelivered task: the first delivery owns the run
        return run
    by = run.requested_by.email
    try:
        result = launch.LAUNCHERS[run.kind](run.parameters, by, timezone.now(), _report(run.pk))
    except Exception as exc:
        logger.exception("%s failed", run)
        StaffRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), message=str(exc)[:255]
        )
        record(
            "operations.run_finished",
            actor=by,
            target=f"{run.kind}-run:{run.pk}",
            outcome=Outcome.FAILURE,
            details={"error": str(exc)[:500]},
        )
    else:
        StaffRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FINISHED, finished_at=timezone.now(), result=result, message="Done"
        )
        record(
            "operations.run_finished",
            actor=by,
            target=f"{run.kind}-run:{run.pk}",
            details=result,
        )
    run.refresh_from_db()
    return run


# --- the daily read success rate --------------------------------------------------------------

# Per UTC day, the active meters with all 24 readings of that day: one pass over the days asked.
_COMPLETE_METERS_SQL = f"""
    SELECT day, count(*) FROM (
        SELECT r.meter_id, (r.hour AT TIME ZONE 'UTC')::date AS day
          FROM {Reading._meta.db_table} r
          JOIN {Meter._meta.db_table} m ON m.id = r.meter_id AND m.status = %s
         WHERE r.hour >= %s AND r.hour < %s
         GROUP BY 1, 2 HAVING count(*) = 24
    ) AS complete
    WHERE day = ANY(%s)
    GROUP BY day
"""  # noqa: S608 - the table names come from the models


def count_read_rates(*, now: datetime, days: int = CHART_DAYS) -> list[date]:
    """Count and store the chart's days that have no figure yet, and yesterday again once an
    hour (meters report up to half a day late). Returns the days counted. The denominator is
    the meters active now (no status history is kept: a meter installed since counts as
    missing on the days before)."""
    wanted = chart_days(now=now, days=days)
    yesterday = wanted[-1]
    stored = dict(DailyReadRate.objects.filter(day__in=wanted).values_list("day", "computed_at"))
    todo = [
        day
        for day in wanted
        if day not in stored or (day == yesterday and stored[day] < now - timedelta(hours=1))
    ]
    if not todo:
        return []
    start = datetime(todo[0].year, todo[0].month, todo[0].day, tzinfo=UTC)
    end = datetime(todo[-1].year, todo[-1].month, todo[-1].day, tzinfo=UTC) + timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(_COMPLETE_METERS_SQL, [MeterStatus.ACTIVE.value, start, end, todo])
        complete = dict(cursor.fetchall())
    active = Meter.objects.filter(status=MeterStatus.ACTIVE).count()
    with transaction.atomic():
        for day in todo:
            DailyReadRate.objects.update_or_create(
                day=day,
                defaults={
                    "active_meters": active,
                    "complete_meters": complete.get(day, 0),
                    "computed_at": now,
                },
            )
    return todo
