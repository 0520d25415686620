"""Reads for the customer portal and API: who may see which meter's readings for which period,
and usage aggregated in the database.

Usage for hour h is register(h + 1 h) - register(h), labelled with h. A gap between two readings
is spread evenly over the missing hours and marked as estimated (up to MAX_SPREAD_HOURS; a longer
gap stays a gap). A register that goes backwards (meter replaced or reset) gives no usage.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from accounts.models import MeterOccupancy
from devices.models import Meter

from . import usage_cache
from .daily import DaySummary, fold_late
from .models import DailyReading, Reading, RetentionStep, TokenKind

MAX_SPREAD_HOURS = 24 * 31
RESOLUTIONS = ("hour", "day", "month")


@dataclass(frozen=True)
class Access:
    """A meter and the period [start, end) of it one viewer may see (end None: up to now)."""

    meter: Meter
    start: datetime
    end: datetime | None
    occupancy_id: int | None = None

    def clip(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        lo = max(start, self.start)
        hi = min(end, self.end) if self.end else end
        return (lo, hi) if lo < hi else None


def _from_occupancy(occupancy) -> Access:
    return Access(occupancy.meter, occupancy.start, occupancy.end, occupancy.pk)


def customer_meters(user) -> list[Access]:
    """The meters a customer has occupied: their latest occupancy of each, open ones first."""
    latest: dict[int, Access] = {}
    for occupancy in (
        MeterOccupancy.objects.filter(user=user).select_related("meter").order_by("-start")
    ):
        latest.setdefault(occupancy.meter_id, _from_occupancy(occupancy))
    return sorted(latest.values(), key=lambda a: (a.end is not None, a.meter.number))


def customer_access(user, meter_number: str) -> Access | None:
    """The customer's latest occupancy of the meter, or None (also for meters that do not
    exist, so the caller answers 404 either way)."""
    if not getattr(user, "is_authenticated", False) or not user.pk:
        return None
    occupancy = (
        MeterOccupancy.objects.filter(user=user, meter__number=meter_number)
        .select_related("meter")
        .order_by("-start")
        .first()
    )
    return _from_occupancy(occupancy) if occupancy else None


def consent_access(token, *, now: datetime) -> Access | None:
    """What a third party's consent token opens: its meter, from `data_from`, inside the
    granting customer's occupancy, until the consent expires or is revoked."""
    if token.kind != TokenKind.CONSENT or not token.is_valid(now):
        return None
    occupancy = (
        MeterOccupancy.objects.filter(user_id=token.user_id, meter_id=token.meter_id)
        .select_related("meter")
        .order_by("-start")
        .first()
    )
    if occupancy is None:
        return None
    access = _from_occupancy(occupancy)
    start = max(access.start, token.data_from)
    end = min(access.end, token.expires_at) if access.end else token.expires_at
    if start >= end:
        return None
    return Access(access.meter, start, end, access.occupancy_id)


# ---- periods ----


def tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_start(moment: datetime, resolution: str) -> datetime:
    local = moment.astimezone(tz())
    if resolution == "hour":
        return floor_hour(moment)
    local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution == "month":
        local = local.replace(day=1)
    return local


def next_bucket(start: datetime, resolution: str) -> datetime:
    if resolution == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(tz())
    if resolution == "day":
        naive = local.replace(tzinfo=None) + timedelta(days=1)
    else:
        days = monthrange(local.year, local.month)[1] - local.day + 1
        naive = local.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=tz())


def default_window(resolution: str, *, now: datetime) -> tuple[datetime, datetime]:
    """The portal's charts: 48 hours, 60 days, 24 months, ending with the current period."""
    end = next_bucket(bucket_start(now, resolution), resolution)
    if resolution == "hour":
        return end - timedelta(hours=48), end
    if resolution == "day":
        start = bucket_start(now, "day").astimezone(tz()).replace(tzinfo=None) - timedelta(days=59)
        return start.replace(tzinfo=tz()), end
    local = bucket_start(now, "month").astimezone(tz())
    year, month = local.year - 2, local.month + 1
    if month > 12:
        year, month = year + 1, 1
    return local.replace(year=year, month=month), end


# ---- usage ----


@dataclass(frozen=True)
class Bucket:
    start: datetime
    wh: float | None  # None: no data (a gap, or outside the viewer's period)
    estimated: bool  # some hours were spread over a gap between readings
    hours: int  # hours with a usage figure
    expected_hours: int

    @property
    def kwh(self) -> float | None:
        return None if self.wh is None else round(self.wh / 1000, 3)

    def as_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "kwh": self.kwh,
            "estimated": self.estimated,
            "complete": self.hours == self.expected_hours,
        }


_USAGE_SQL = """
WITH first AS (
    SELECT COALESCE(
        (SELECT max(hour) FROM readings_reading
          WHERE meter_id = %(meter)s AND hour <= %(lo)s AND hour >= %(floor)s
            AND hour >= %(cutoff)s),
        %(lo)s) AS hour
),
r AS (
    SELECT rr.hour, rr.wh, lag(rr.hour) OVER w AS prev_hour, lag(rr.wh) OVER w AS prev_wh
      FROM readings_reading rr, first
     WHERE rr.meter_id = %(meter)s AND rr.hour >= first.hour AND rr.hour <= %(hi)s
       AND rr.hour >= %(cutoff)s
    WINDOW w AS (ORDER BY rr.hour)
),
spans AS (
    SELECT prev_hour, hour, (wh - prev_wh)::float8 AS used,
           (EXTRACT(EPOCH FROM hour - prev_hour) / 3600)::int AS n
      FROM r
     WHERE prev_hour IS NOT NULL AND wh >= prev_wh
),
hours AS (
    -- Consecutive readings (nearly all rows) need no series; only gaps are spread out.
    SELECT prev_hour AS hour, used AS wh, false AS estimated FROM spans WHERE n = 1
    UNION ALL
    SELECT h, used / n, true
      FROM spans,
           generate_series(prev_hour, hour - interval '1 hour', interval '1 hour') AS h
     WHERE n > 1 AND n <= %(max_spread)s
)
SELECT date_trunc(%(unit)s, hour AT TIME ZONE %(tz)s) AS bucket,
       sum(wh), bool_or(estimated), count(*)
  FROM hours
 WHERE hour >= %(lo)s AND hour < %(hi)s
 GROUP BY 1
 ORDER BY 1
"""


def _spread(
    start: tuple[datetime, int], end: tuple[datetime, int], used: int, lo: datetime, hi: datetime
):
    """`used` Wh between two points spread evenly over the hours from the first, inside
    [lo, hi); estimated when more than one hour shares it."""
    n = int((end[0] - start[0]).total_seconds() // 3600)
    if 0 < n <= MAX_SPREAD_HOURS:
        for i in range(n):
            hour = start[0] + timedelta(hours=i)
            if lo <= hour < hi:
                yield hour, used / n, n > 1


def daily_cutoff(meter_id: int) -> datetime | None:
    """The end of the meter's last day the retention policy aggregated: before it, the meter's
    history is its daily totals and the hourly readings that arrived late (`old_segments`)."""
    last = (
        DailyReading.objects.filter(meter_id=meter_id)
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    return None if last is None else datetime.combine(last, time.min, UTC) + timedelta(days=1)


@dataclass(frozen=True)
class Segment:
    """A stretch of history before the cutoff: an aggregated day (late readings folded in as
    the retention job will fold them) or a late hourly reading of a day not yet aggregated."""

    summary: DaySummary
    reading: tuple | None  # (hour, wh, source, received_at) of a late hourly reading


def old_segments(meter_id: int, since: datetime, until: datetime, cutoff: datetime) -> list:
    """The segments of the UTC days from `since` to `until` (both included), in order."""
    first_day, last_day = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    days = {
        d.day: d
        for d in DailyReading.objects.filter(
            meter_id=meter_id, day__gte=first_day, day__lte=last_day
        )
    }
    late = Reading.objects.filter(
        meter_id=meter_id,
        hour__gte=datetime.combine(first_day, time.min, UTC),
        hour__lt=min(cutoff, datetime.combine(last_day, time.min, UTC) + timedelta(days=1)),
    ).order_by("hour")
    late_by_day: dict = {}
    segments = []
    for hour, wh, source, received in late.values_list("hour", "wh", "source", "received_at"):
        day = hour.astimezone(UTC).date()
        if day in days:
            late_by_day.setdefault(day, []).append((hour, wh))
        else:
            segments.append(Segment(DaySummary.of_reading(hour, wh), (hour, wh, source, received)))
    for day, daily in days.items():
        summary, _ = fold_late(DaySummary.of(daily), late_by_day.get(day, []))
        segments.append(Segment(summary, None))
    return sorted(segments, key=lambda segment: segment.summary.first_hour)


def _next_point(meter_id: int, after: datetime) -> tuple[datetime, int] | None:
    """The first register value after `after`: a day's first or an hourly reading."""
    points = [
        DailyReading.objects.filter(meter_id=meter_id, first_hour__gt=after)
        .order_by("day")
        .values_list("first_hour", "first_wh")
        .first(),
        Reading.objects.filter(meter_id=meter_id, hour__gt=after)
        .order_by("hour")
        .values_list("hour", "wh")
        .first(),
    ]
    return min((p for p in points if p is not None), default=None)


def _spread_hours_of_day(day: DaySummary, lo: datetime, hi: datetime):
    """A day's usage spread evenly over the hours that had a usage figure (estimated when more
    than one hour shares it)."""
    start = datetime.combine(day.first_hour.astimezone(UTC).date(), time.min, UTC)
    count = day.hour_count()
    for i in range(24):
        hour = start + timedelta(hours=i)
        if day.hours_with_usage >> i & 1 and lo <= hour < hi:
            yield hour, day.usage_wh / count, count > 1


def _hours_before_cutoff(meter_id: int, lo: datetime, hi: datetime, floor: datetime, cutoff):
    """Hours whose readings the retention policy replaced by daily totals: each day's usage
    spread over its hours that had a figure, and the spans between segments (and from the last
    to the next register value) spread as a gap is. The totals and counted hours per day and
    month are those of the hourly readings replaced; the hours within a day are estimates."""
    since = max(floor, lo - timedelta(hours=MAX_SPREAD_HOURS))
    if since >= cutoff:
        return
    segments = [s.summary for s in old_segments(meter_id, since, min(hi, cutoff), cutoff)]
    segments = [s for s in segments if s.last_hour >= since and s.first_hour < hi]
    if not segments:
        return
    nexts = [(s.first_hour, s.first_wh) for s in segments[1:]]
    nexts.append(_next_point(meter_id, segments[-1].last_hour))
    for day, after in zip(segments, nexts, strict=True):
        if day.first_hour >= floor:
            yield from _spread_hours_of_day(day, lo, hi)
        if after is not None and after[1] >= day.last_wh and day.last_hour >= floor:
            yield from _spread((day.last_hour, day.last_wh), after, after[1] - day.last_wh, lo, hi)


def _add_hours(result: dict, resolution: str, hours) -> dict:
    for hour, wh, estimated in hours:
        key = bucket_start(hour, resolution)
        total, est, count = result.get(key, (0.0, False, 0))
        result[key] = (total + wh, est or estimated, count + 1)
    return result


def _aggregate(
    access: Access, resolution: str, lo: datetime, hi: datetime, cutoff: datetime | None
) -> dict:
    """{bucket start: (wh, estimated, hours)}: hourly readings from the cutoff on computed by
    the database, the daily totals (and late readings) before it here."""
    floor = access.start
    daily = _hours_before_cutoff(access.meter.pk, lo, hi, floor, cutoff) if cutoff else ()
    cutoff = cutoff or floor
    with connection.cursor() as cursor:
        cursor.execute(
            _USAGE_SQL,
            {
                "meter": access.meter.pk,
                "lo": lo,
                "hi": hi,
                "floor": floor,
                "cutoff": cutoff,
                "unit": resolution,
                "tz": settings.TIME_ZONE,
                "max_spread": MAX_SPREAD_HOURS,
            },
        )
        zone = tz()
        rows = {
            bucket.replace(tzinfo=zone): (wh, estimated, hours)
            for bucket, wh, estimated, hours in cursor.fetchall()
        }
    return _add_hours(rows, resolution, daily)


def usage(access: Access, resolution: str, start: datetime, end: datetime) -> list[Bucket]:
    """Usage per bucket from `start` to `end`, every bucket present (gaps are None)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r}")
    rows = usage_cache.cached(
        access,
        ("usage", resolution, start, end),
        lambda: [astuple(b) for b in _usage(access, resolution, start, end)],
    )
    return [Bucket(*row) for row in rows]


def _usage(access: Access, resolution: str, start: datetime, end: datetime) -> list[Bucket]:
    window = access.clip(floor_hour(start), floor_hour(end))
    rows = _aggregate(access, resolution, *window, daily_cutoff(access.meter.pk)) if window else {}
    buckets = []
    cursor = bucket_start(start, resolution)
    while cursor < end:
        following = next_bucket(cursor, resolution)
        expected = int((following - cursor).total_seconds() // 3600)
        found = rows.get(cursor.astimezone(tz()))
        if found is None:
            buckets.append(Bucket(cursor, None, False, 0, expected))
        else:
            wh, estimated, hours = found
            buckets.append(Bucket(cursor, float(wh), bool(estimated), int(hours), expected))
        cursor = following
    return buckets


def total_kwh(
    access: Access, start: datetime, end: datetime, cutoff: datetime | None
) -> float | None:
    """Usage from `start` to `end`; `cutoff` is the meter's `daily_cutoff`."""
    window = access.clip(start, end)
    if window is None:
        return None
    rows = _aggregate(access, "month", *window, cutoff)
    if not rows:
        return None
    return round(sum(wh for wh, _, _ in rows.values()) / 1000, 3)


def comparisons(access: Access, *, now: datetime) -> dict:
    """This week so far against the same span of last week; this month so far against the
    same days of the same month last year."""
    hour = floor_hour(now)
    return usage_cache.cached(access, ("comparisons", hour), lambda: _comparisons(access, hour))


def _comparisons(access: Access, hour: datetime) -> dict:
    local = hour.astimezone(tz())
    week_start = (local - timedelta(days=local.weekday())).replace(hour=0)
    elapsed = hour - week_start
    month_start = local.replace(day=1, hour=0)
    try:
        last_year = month_start.replace(year=month_start.year - 1)
    except ValueError:  # never for day 1, kept for clarity
        last_year = month_start - timedelta(days=365)
    month_elapsed = hour - month_start
    cutoff = daily_cutoff(access.meter.pk)
    last_week = week_start - timedelta(days=7)
    return {
        "week": {
            "this": total_kwh(access, week_start, hour, cutoff),
            "last": total_kwh(access, last_week, last_week + elapsed, cutoff),
        },
        "month": {
            "this": total_kwh(access, month_start, hour, cutoff),
            "last_year": total_kwh(access, last_year, last_year + month_elapsed, cutoff),
        },
    }


@dataclass(frozen=True)
class CurrentReading:
    hour: datetime
    kwh: float
    received_at: datetime


def current_reading(access: Access) -> CurrentReading | None:
    row = usage_cache.cached(access, ("current",), lambda: _current_reading_row(access))
    return None if row is None else CurrentReading(row[0], row[1] / 1000, row[2])


def _current_reading_row(access: Access) -> tuple | None:
    qs = Reading.objects.filter(meter=access.meter, hour__gte=access.start)
    if access.end:
        qs = qs.filter(hour__lt=access.end)
    return qs.order_by("-hour").values_list("hour", "wh", "received_at").first()


@dataclass(frozen=True)
class ExportRow:
    """An hourly reading, or a daily total where the retention policy deleted the hours."""

    hour: datetime  # the reading's hour; a daily total's day start (UTC)
    first_wh: int
    last_wh: int
    usage_wh: int  # usage between a daily total's first and last readings; 0 for an hour
    readings: int
    source: int | None  # None: a daily total
    received_at: datetime | None

    @property
    def is_daily_total(self) -> bool:
        return self.source is None


def _export_row(segment: Segment) -> ExportRow:
    if segment.reading is not None:
        hour, wh, source, received = segment.reading
        return ExportRow(hour, wh, wh, 0, 1, source, received)
    day = segment.summary
    start = datetime.combine(day.first_hour.astimezone(UTC).date(), time.min, UTC)
    return ExportRow(start, day.first_wh, day.last_wh, day.usage_wh, day.readings, None, None)


def readings_for_export(access: Access, start: datetime | None = None, end: datetime | None = None):
    """The viewer's whole history in their period, oldest first, streamed: daily totals (and
    late hourly readings) before the cutoff as the portal counts them, then hourly readings."""
    lo = max(start or access.start, access.start)
    hi = min(x for x in (end, access.end) if x) if (end or access.end) else None
    cutoff = daily_cutoff(access.meter.pk)
    if cutoff and lo < cutoff:
        until = min(hi, cutoff) if hi else cutoff
        for segment in old_segments(access.meter.pk, lo, until, cutoff):
            if segment.summary.first_hour >= lo and (hi is None or segment.summary.last_hour < hi):
                yield _export_row(segment)
    qs = Reading.objects.filter(meter=access.meter, hour__gte=max(lo, cutoff or lo))
    if hi:
        qs = qs.filter(hour__lt=hi)
    rows = qs.order_by("hour").values_list("hour", "wh", "source", "received_at")
    for hour, wh, source, received in rows.iterator(chunk_size=2000):
        yield ExportRow(hour, wh, wh, 0, 1, source, received)


def retention_steps_for(user) -> list[RetentionStep]:
    """Retention steps that reached into the time the customer has had a meter (the steps are
    fleet-wide; one whose boundary is before all their occupancies touched none of their data)."""
    starts = [access.start for access in customer_meters(user)]
    if not starts:
        return []
    return list(RetentionStep.objects.filter(before__gt=min(starts)).order_by("-ran_at", "-id"))
