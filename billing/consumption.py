"""Hourly consumption from cumulative readings, estimated where hours are missing: one SQL query.

Every hour's consumption is the difference of consecutive cumulative reads, computed by window
functions in PostgreSQL (never a Python loop over readings). Each hour is then put in its tariff
version and time-of-use band by its *local* time (`AT TIME ZONE`, so DST days have 23 or 25
hours) and summed. Missing hours are estimated (see docs/billing.md):

- a gap between two actual reads no longer than BILLING_LINEAR_GAP_MAX_HOURS: linear
  interpolation of the register (the consumption spread evenly over the gap);
- a longer gap: the meter's own average consumption per local hour of day (its profile over the
  previous BILLING_PROFILE_DAYS days), scaled so the gap adds up to the difference of the reads;
- no read after the gap yet: the profile, unscaled (corrected once a read arrives).

A meter window is one meter's part of an account's period: [start, end) in UTC hours, with
optional anchor registers at its ends (a meter swap's old final / new first reads).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connections, transaction

LOOK_AROUND = timedelta(days=62)  # how far to look for the actual reads around a gap

USAGE_SQL = """
WITH w AS (
    SELECT * FROM unnest(%(wid)s::int[], %(meter)s::bigint[], %(tariff)s::bigint[],
                         %(start)s::timestamptz[], %(end)s::timestamptz[],
                         %(sa)s::bigint[], %(ea)s::bigint[])
        AS w(wid, meter_id, tariff_id, start_h, end_h, start_anchor, end_anchor)
), b AS (
    -- from the last actual read at or before the window to the first at or after it
    SELECT w.*,
        CASE WHEN w.start_anchor IS NOT NULL THEN w.start_h ELSE COALESCE(
            (SELECT max(r.hour) FROM readings_reading r WHERE r.meter_id = w.meter_id
               AND r.hour <= w.start_h AND r.hour >= w.start_h - %(look)s::interval),
            w.start_h) END AS lo,
        CASE WHEN w.end_anchor IS NOT NULL THEN w.end_h ELSE COALESCE(
            (SELECT min(r.hour) FROM readings_reading r WHERE r.meter_id = w.meter_id
               AND r.hour >= w.end_h AND r.hour <= w.end_h + %(look)s::interval),
            w.end_h) END AS hi
    FROM w
), pts AS (
    -- the actual reads, with a swap's final/first registers in place of the reads at its hour
    SELECT b.wid, b.meter_id, b.tariff_id, b.start_h, b.end_h, r.hour, r.wh
    FROM b JOIN readings_reading r ON r.meter_id = b.meter_id
        AND r.hour >= b.lo AND r.hour <= b.hi
        AND r.hour >= %(range_from)s AND r.hour <= %(range_to)s
    WHERE NOT (b.start_anchor IS NOT NULL AND r.hour = b.start_h)
      AND NOT (b.end_anchor IS NOT NULL AND r.hour = b.end_h)
    UNION ALL
    SELECT wid, meter_id, tariff_id, start_h, end_h, start_h, start_anchor
    FROM b WHERE start_anchor IS NOT NULL
    UNION ALL
    SELECT wid, meter_id, tariff_id, start_h, end_h, end_h, end_anchor
    FROM b WHERE end_anchor IS NOT NULL
), pairs AS (
    SELECT pts.*, lead(hour) OVER pw AS next_h, lead(wh) OVER pw AS next_wh
    FROM pts WINDOW pw AS (PARTITION BY wid ORDER BY hour)
), gaps AS (
    -- two reads more than an hour apart, or the last read when none follows before the end
    SELECT * FROM pairs
    WHERE next_h - hour > interval '1 hour' OR (next_h IS NULL AND hour < end_h)
), need AS (
    SELECT DISTINCT meter_id FROM gaps
    WHERE next_h IS NULL OR next_h - hour > %(linear_max)s::interval
), prof_src AS (
    SELECT r.meter_id, r.hour, r.wh - lag(r.wh) OVER pm AS d, r.hour - lag(r.hour) OVER pm AS step
    FROM readings_reading r
    WHERE r.meter_id IN (SELECT meter_id FROM need)
      AND r.hour >= %(profile_from)s AND r.hour <= %(range_to)s
    WINDOW pm AS (PARTITION BY r.meter_id ORDER BY r.hour)
), prof_h AS (
    -- the meter's average use per local hour of day, from consecutive actual reads
    SELECT meter_id,
        extract(hour FROM (hour - interval '1 hour') AT TIME ZONE %(tz)s)::int AS hod,
        avg(d)::numeric AS p
    FROM prof_src WHERE step = interval '1 hour' AND d >= 0 GROUP BY 1, 2
), prof_all AS (
    SELECT meter_id, avg(p) AS pa FROM prof_h GROUP BY 1
), gap_hours AS (
    -- one row per hour of a gap (a tail gap runs to the window's end, inclusive)
    SELECT gaps.wid, gaps.meter_id, gaps.tariff_id, gaps.start_h, gaps.end_h,
        gaps.hour AS a_h, gaps.wh AS a_wh, gaps.next_h AS b_h, gaps.next_wh AS b_wh, g.hour
    FROM gaps CROSS JOIN LATERAL generate_series(
        gaps.hour, COALESCE(gaps.next_h - interval '1 hour', gaps.end_h), interval '1 hour'
    ) AS g(hour)
), gp AS (
    SELECT gh.*, COALESCE(ph.p, pa.pa, 0) AS p
    FROM gap_hours gh
    LEFT JOIN prof_h ph ON ph.meter_id = gh.meter_id
        AND ph.hod = extract(hour FROM gh.hour AT TIME ZONE %(tz)s)::int
    LEFT JOIN prof_all pa ON pa.meter_id = gh.meter_id
), gw AS (
    SELECT gp.*, sum(p) OVER (PARTITION BY wid, a_h) AS gap_w FROM gp
), gc AS (
    SELECT gw.*, CASE
        WHEN b_h IS NULL THEN p
        WHEN b_h - a_h <= %(linear_max)s::interval OR gap_w <= 0
            THEN GREATEST(b_wh - a_wh, 0)::numeric
                 / (extract(epoch FROM b_h - a_h)::numeric / 3600)
        ELSE GREATEST(b_wh - a_wh, 0)::numeric * p / gap_w
    END AS cons
    FROM gw
), hours AS (
    SELECT wid, tariff_id, hour, GREATEST(next_wh - wh, 0)::numeric AS cons, false AS est
    FROM pairs
    WHERE next_h - hour = interval '1 hour' AND hour >= start_h AND hour < end_h
    UNION ALL
    SELECT wid, tariff_id, hour, cons, true FROM gc WHERE hour >= start_h AND hour < end_h
), u AS (
    SELECT hours.*, (hour AT TIME ZONE %(tz)s) AS local FROM hours
), regs AS (
    SELECT wid, start_h, end_h, hour, wh::numeric AS register, false AS est FROM pts
    UNION ALL
    SELECT wid, start_h, end_h, hour, register, true FROM (
        SELECT gc.*, a_wh + COALESCE(sum(cons) OVER (PARTITION BY wid, a_h ORDER BY hour
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS register
        FROM gc) x
    WHERE hour <> a_h
)
SELECT 'u', u.wid, v.id, bd.name, sum(u.cons), bool_or(u.est),
       COALESCE(sum(u.cons) FILTER (WHERE u.est), 0)
FROM u
LEFT JOIN billing_tariffversion v ON v.tariff_id = u.tariff_id
    AND v.valid_from <= u.local::date AND (v.valid_to IS NULL OR u.local::date < v.valid_to)
LEFT JOIN billing_touband bd ON v.kind = 'tou' AND bd.version_id = v.id
    AND (bd.day_type = 'all'
         OR (bd.day_type = 'weekend') = (extract(isodow FROM u.local) >= 6))
    AND CASE WHEN bd.start_hour < bd.end_hour
             THEN extract(hour FROM u.local) >= bd.start_hour
                  AND extract(hour FROM u.local) < bd.end_hour
             ELSE extract(hour FROM u.local) >= bd.start_hour
                  OR extract(hour FROM u.local) < bd.end_hour END
GROUP BY u.wid, v.id, bd.name
UNION ALL
SELECT CASE WHEN hour = start_h THEN 'o' ELSE 'c' END, wid, NULL, NULL, register, est, NULL
FROM regs WHERE hour = start_h OR hour = end_h
"""


@dataclass(frozen=True)
class Window:
    wid: int
    account_id: int
    meter_id: int
    tariff_id: int
    start: datetime
    end: datetime
    start_anchor: int | None = None
    end_anchor: int | None = None


@dataclass
class Usage:
    wh: Decimal = Decimal(0)
    estimated_wh: Decimal = Decimal(0)
    estimated: bool = False

    def add(self, other: Usage) -> None:
        self.wh += other.wh
        self.estimated_wh += other.estimated_wh
        self.estimated = self.estimated or other.estimated


@dataclass
class WindowUsage:
    window: Window
    # (tariff version id or None, band name or None) -> usage
    usage: dict[tuple[int | None, str | None], Usage] = field(default_factory=dict)
    opening_wh: Decimal | None = None
    opening_estimated: bool = True
    closing_wh: Decimal | None = None
    closing_estimated: bool = True


def read_alias() -> str:
    """The database alias billing reads through: the read-only role when configured (S11)."""
    return settings.BILLING_READ_DATABASE


def window_usage(windows: list[Window], *, using: str | None = None) -> dict[int, WindowUsage]:
    """Consumption per tariff version and band, and opening/closing registers, per window."""
    result = {w.wid: WindowUsage(w) for w in windows}
    if not windows:
        return result
    params = {
        "wid": [w.wid for w in windows],
        "meter": [w.meter_id for w in windows],
        "tariff": [w.tariff_id for w in windows],
        "start": [w.start for w in windows],
        "end": [w.end for w in windows],
        "sa": [w.start_anchor for w in windows],
        "ea": [w.end_anchor for w in windows],
        "look": LOOK_AROUND,
        "range_from": min(w.start for w in windows) - LOOK_AROUND,
        "range_to": max(w.end for w in windows) + LOOK_AROUND,
        "profile_from": min(w.start for w in windows)
        - timedelta(days=settings.BILLING_PROFILE_DAYS),
        "linear_max": timedelta(hours=settings.BILLING_LINEAR_GAP_MAX_HOURS),
        "tz": settings.BILLING_TIME_ZONE,
    }
    alias = using or read_alias()
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # The window functions sort every hour of the batch; keep those sorts in memory.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # The planner's row estimates for the unnested windows are far off, and compiling the
        # query (JIT) took longer than running it.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(USAGE_SQL, params)
        rows = cursor.fetchall()
    for kind, wid, version_id, band, value, flag, estimated_wh in rows:
        item = result[wid]
        if kind == "u":
            item.usage[(version_id, band)] = Usage(Decimal(value), Decimal(estimated_wh), flag)
        elif kind == "o":
            item.opening_wh, item.opening_estimated = value, flag
        else:
            item.closing_wh, item.closing_estimated = value, flag
    return result


def combined_usage(items: list[WindowUsage]) -> dict[tuple[int | None, str | None], Usage]:
    """The usage of several meter windows (a swap) added up per version and band."""
    total: dict[tuple[int | None, str | None], Usage] = defaultdict(Usage)
    for item in items:
        for key, usage in item.usage.items():
            total[key].add(usage)
    return dict(total)
