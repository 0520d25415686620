"""Reads of the revenue-protection app, for views, tasks and commands."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, QuerySet

from accounts.roles import FIELD_ENGINEER

from . import conf
from .models import ACTIVE_CASE_STATES, Absence, Case, WorkOrder, WorkOrderState


def cases(
    *,
    state: str = "",
    severity: int | None = None,
    cause: str = "",
    meter_number: str = "",
) -> QuerySet[Case]:
    """Cases, most severe first; by default the active ones (not closed)."""
    qs = Case.objects.select_related("meter", "meter__premises")
    if state == "all":
        pass
    elif state:
        qs = qs.filter(state=state)
    else:
        qs = qs.filter(state__in=ACTIVE_CASE_STATES)
    if severity:
        qs = qs.filter(severity=severity)
    if cause:
        qs = qs.filter(cause=cause)
    if meter_number:
        qs = qs.filter(meter__number__icontains=meter_number.replace(" ", "").upper())
    return qs.order_by("-severity", "-opened_at")


def severity_counts() -> dict[int, int]:
    rows = (
        Case.objects.filter(state__in=ACTIVE_CASE_STATES)
        .values("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    return dict(rows)


def awaiting_approval() -> QuerySet[WorkOrder]:
    return WorkOrder.objects.filter(state=WorkOrderState.AWAITING_APPROVAL).select_related(
        "case", "case__meter", "engineer", "created_by"
    )


def field_engineers() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, groups__name=FIELD_ENGINEER)
        .order_by("email")
    )


def jobs_for(engineer) -> QuerySet[WorkOrder]:
    """The engineer's own jobs: open ones first, then their visits of the last 30 days."""
    return (
        WorkOrder.objects.filter(engineer=engineer)
        .exclude(state=WorkOrderState.CANCELLED)
        .exclude(state=WorkOrderState.AWAITING_APPROVAL)
        .select_related("case", "case__meter", "case__meter__premises")
        .order_by("visited_at", "-case__severity", "created_at")
    )


def job_for(engineer, pk: int) -> WorkOrder | None:
    """One of the engineer's own jobs, or None (also when it is someone else's)."""
    return jobs_for(engineer).filter(pk=pk).first()


def meter_history(meter_id: int, *, exclude_case: int | None = None) -> QuerySet[Case]:
    qs = Case.objects.filter(meter_id=meter_id).prefetch_related("work_orders")
    if exclude_case:
        qs = qs.exclude(pk=exclude_case)
    return qs.order_by("-opened_at")


def meter_daily_chart(meter_id: int, *, now: datetime, days: int = 90) -> dict[str, Any]:
    """Daily consumption of one meter for the evidence page (one GROUP BY in the database)."""
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT min(hour), max(hour), max(wh) - min(wh), count(*)
            FROM readings_reading
            WHERE meter_id = %s AND hour >= %s
            GROUP BY date_trunc('day', hour)
            ORDER BY 1
            """,
            [meter_id, start],
        )
        rows = cursor.fetchall()
    minimum = conf.setting("MIN_HOURS_PER_DAY")
    labels, used, hours = [], [], []
    for first, last, wh, count in rows:
        span = (last - first).total_seconds() / 3600
        labels.append(first.date().isoformat())
        used.append(round(wh * 24 / span) if span and count >= minimum else None)
        hours.append(count)
    return {
        "labels": labels,
        "datasets": [
            {"label": "Daily use (Wh)", "data": used, "type": "bar"},
            {"label": "Readings received", "data": hours, "yAxisID": "y1"},
        ],
    }


def absences(meter_id: int, *, since: date | None = None) -> QuerySet[Absence]:
    """The meter's declared absences (ending on or after `since`), newest first."""
    qs = Absence.objects.filter(meter_id=meter_id).select_related("declared_by")
    if since is not None:
        qs = qs.filter(last_day__gte=since)
    return qs.order_by("-first_day")
