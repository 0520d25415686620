"""Retention of hourly readings: past the billing and dispute windows, each meter's hourly
readings of a day become one daily total and are deleted; monthly partitions left empty are
dropped. Each step is audited and recorded for the customer portal.

Hourly readings show when a household wakes, leaves and sleeps; they are kept only while bills
can still be computed or disputed. The boundary is a month start, so whole monthly partitions
fall behind it, and it is never later than the configured age, so nothing inside the windows
is ever read for deletion.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

from audit.models import Outcome
from audit.services import record
from readings.conf import setting

from .daily import DaySummary, fold_late
from .models import DailyReading, RetentionAction, RetentionStep
from .partitions import TABLE, add_months, existing_partitions, partition_month

logger = logging.getLogger(__name__)

ACTOR = "retention"
AUDIT_ACTION = "readings.retention"

# One statement: what is aggregated is exactly what is deleted (both see one snapshot; a reading
# arriving meanwhile for an old day is neither). Days already aggregated are left alone
# (ON CONFLICT DO NOTHING); their late readings are folded in by FOLD_LATE first.
# hours_with_usage: the hours [previous reading, reading) of every span the register did not fall.
AGGREGATE_AND_DELETE = f"""
WITH hourly AS (
    SELECT meter_id, hour, wh, (hour AT TIME ZONE 'UTC')::date AS day,
           wh - lag(wh) OVER day AS rise, lag(hour) OVER day AS prev_hour
      FROM {TABLE}
     WHERE hour >= %(start)s AND hour < %(end)s
    WINDOW day AS (PARTITION BY meter_id, (hour AT TIME ZONE 'UTC')::date ORDER BY hour)
),
aggregated AS (
    INSERT INTO readings_dailyreading
        (meter_id, day, first_hour, first_wh, last_hour, last_wh, readings, usage_wh,
         hours_with_usage)
    SELECT meter_id, day,
           min(hour), (array_agg(wh ORDER BY hour))[1],
           max(hour), (array_agg(wh ORDER BY hour DESC))[1],
           count(*), coalesce(sum(greatest(rise, 0)), 0),
           coalesce(sum(CASE WHEN rise >= 0
                             THEN (1 << extract(hour FROM hour AT TIME ZONE 'UTC')::int)
                                - (1 << extract(hour FROM prev_hour AT TIME ZONE 'UTC')::int)
                        END), 0)
      FROM hourly
     GROUP BY meter_id, day
    ON CONFLICT (meter_id, day) DO NOTHING
    RETURNING meter_id, day
),
deleted AS (
    DELETE FROM {TABLE} r
     USING aggregated a
     WHERE r.meter_id = a.meter_id
       AND r.hour >= a.day::timestamp AT TIME ZONE 'UTC'
       AND r.hour < (a.day + 1)::timestamp AT TIME ZONE 'UTC'
       AND r.hour >= %(start)s AND r.hour < %(end)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM aggregated), (SELECT count(*) FROM deleted)
"""  # noqa: S608 - identifiers are ours, values are parameters

# Hourly readings stored after their day was aggregated, with that day locked.
LATE_READINGS = f"""
SELECT d.id, r.hour, r.wh
  FROM {TABLE} r
  JOIN readings_dailyreading d
    ON d.meter_id = r.meter_id AND d.day = (r.hour AT TIME ZONE 'UTC')::date
 WHERE r.hour >= %(start)s AND r.hour < %(end)s
 ORDER BY d.id, r.hour
   FOR UPDATE OF d
"""  # noqa: S608 - identifiers are ours, values are parameters


class RetentionPolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    hourly_days: int
    billing_window_days: int
    dispute_window_days: int

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            hourly_days=setting("READINGS_HOURLY_RETENTION_DAYS"),
            billing_window_days=setting("READINGS_BILLING_WINDOW_DAYS"),
            dispute_window_days=setting("READINGS_DISPUTE_WINDOW_DAYS"),
        )

    @property
    def windows_days(self) -> int:
        return self.billing_window_days + self.dispute_window_days

    def problem(self) -> str | None:
        """Why this policy must not run, or None."""
        if min(self.hourly_days, self.billing_window_days, self.dispute_window_days) < 0:
            return "retention ages must not be negative"
        if self.hourly_days < self.windows_days:
            return (
                f"hourly readings would go after {self.hourly_days} days, inside the billing "
                f"and dispute windows ({self.billing_window_days} + "
                f"{self.dispute_window_days} days)"
            )
        return None

    def boundary(self, now: datetime) -> datetime:
        """Hourly readings before this instant (a UTC month start) are past every window."""
        oldest_kept = (now - timedelta(days=self.hourly_days)).astimezone(UTC)
        return datetime(oldest_kept.year, oldest_kept.month, 1, tzinfo=UTC)

    def first_kept_month(self, now: datetime) -> date:
        return self.boundary(now).date()


def _step(now: datetime, action: str, before: datetime, count: int, detail: str) -> RetentionStep:
    step = RetentionStep.objects.create(
        ran_at=now, action=action, before=before, count=count, detail=detail
    )
    record(
        AUDIT_ACTION,
        actor=ACTOR,
        target=f"{action} before {before:%Y-%m-%d}",
        details={"action": action, "before": before.isoformat(), "count": count, "detail": detail},
    )
    logger.info("retention: %s before %s: %s %s", action, before.date(), count, detail)
    return step


def _months_before(before: datetime) -> list[datetime]:
    """The UTC months from the oldest hourly reading up to the boundary."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(hour) FROM {TABLE} WHERE hour < %s", [before])  # noqa: S608
        oldest = cursor.fetchone()[0]
    if oldest is None:
        return []
    month = oldest.astimezone(UTC).date().replace(day=1)
    months = []
    while (start := datetime.combine(month, datetime.min.time(), UTC)) < before:
        months.append(start)
        month = add_months(month, 1)
    return months


def _fold_late_readings(cursor, start: datetime, end: datetime) -> tuple[int, int]:
    """Fold the month's late hourly readings into their days' totals and delete them. Returns
    (readings folded, of which within a day's span and so already counted)."""
    cursor.execute(LATE_READINGS, {"start": start, "end": end})
    late: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for daily_id, hour, wh in cursor.fetchall():
        late[daily_id].append((hour, wh))
    folded = within = 0
    for daily in DailyReading.objects.filter(pk__in=list(late)):
        summary, covered = fold_late(DaySummary.of(daily), late[daily.pk])
        DailyReading.objects.filter(pk=daily.pk).update(**asdict(summary))
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE meter_id = %s AND hour = ANY(%s)",  # noqa: S608
            [daily.meter_id, [hour for hour, _ in late[daily.pk]]],
        )
        folded += cursor.rowcount
        within += len(covered)
        if covered:
            logger.info(
                "retention: %s late readings of meter %s on %s were within the day's readings",
                len(covered),
                daily.meter_id,
                daily.day,
            )
    return folded, within


def _aggregate_and_delete(now: datetime, before: datetime) -> list[RetentionStep]:
    """Month by month (one partition each, a bounded transaction each)."""
    steps = []
    for start in _months_before(before):
        end = datetime.combine(add_months(start.date(), 1), datetime.min.time(), UTC)
        month = f"{start:%B %Y}"
        with transaction.atomic(), connection.cursor() as cursor:
            # One retention run at a time; ingest is not blocked (row locks only).
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [AUDIT_ACTION])
            folded, within = _fold_late_readings(cursor, start, end)
            if folded:
                detail = f"{month}, {within} within a day's readings" if within else month
                steps.append(_step(now, RetentionAction.FOLD_LATE, before, folded, detail))
            cursor.execute(AGGREGATE_AND_DELETE, {"start": start, "end": end})
            days, rows = cursor.fetchone()
            if days:
                steps.append(_step(now, RetentionAction.AGGREGATE, before, days, month))
                steps.append(_step(now, RetentionAction.DELETE, before, rows, month))
    return steps


def _drop_empty_partitions(now: datetime, before: datetime) -> list[RetentionStep]:
    """Drop the monthly partitions that end at or before the boundary and hold no row. One
    short transaction each: detaching locks the readings table for that moment only."""
    steps = []
    for name in sorted(existing_partitions(connection)):
        month = partition_month(name)
        if (
            month is None
            or datetime.combine(add_months(month, 1), datetime.min.time(), UTC) > before
        ):
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")  # noqa: S608 - our name
            if cursor.fetchone()[0]:
                logger.warning("retention: %s still holds readings; kept", name)
                continue
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
            steps.append(_step(now, RetentionAction.DROP_PARTITION, before, 1, f"{month:%B %Y}"))
    return steps


def apply_retention(*, now: datetime, policy: Policy | None = None) -> list[RetentionStep]:
    """Run the policy once; returns the steps taken (none when nothing is due). A policy that
    would reach into the windows is refused, audited and raised."""
    policy = policy or Policy.from_settings()
    problem = policy.problem()
    if problem:
        logger.error("retention refused: %s", problem)
        record(AUDIT_ACTION, actor=ACTOR, outcome=Outcome.FAILURE, details={"reason": problem})
        raise RetentionPolicyError(problem)
    before = policy.boundary(now)
    return _aggregate_and_delete(now, before) + _drop_empty_partitions(now, before)
