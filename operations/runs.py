"""What the operations tasks do on a worker: carry a staff run to its end, and count the daily
read success rate. `operations.tasks` calls these; the services that enqueue runs import the
tasks."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Outcome
from audit.services import record
from devices.models import Meter, MeterStatus
from readings.models import Reading

from . import launch
from .models import DailyReadRate, RunStatus, StaffRun
from .selectors import CHART_DAYS, chart_days

logger = logging.getLogger(__name__)


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
