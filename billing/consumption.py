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
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from math import ceil
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connections, transaction

from .conf import setting
from .models import TariffVersion
from .rating import Usage, bands_at

LOOK_AROUND = timedelta(days=62)  # how far to look for the actual reads around a gap

# The reads of each window, from the last actual read at or before its start to the first at or
# after its end, with a swap's final/first registers in place of the reads at its hours; their
# consecutive pairs; and the gaps between them (two reads more than an hour apart, or the last
# read when none follows before the end). Only the reference computation uses this part.
_PAIRS_SQL = """
WITH w AS (
    SELECT * FROM unnest(%(wid)s::int[], %(meter)s::bigint[], %(tariff)s::bigint[],
                         %(start)s::timestamptz[], %(end)s::timestamptz[],
                         %(sa)s::bigint[], %(ea)s::bigint[])
        AS w(wid, meter_id, tariff_id, start_h, end_h, start_anchor, end_anchor)
), b AS (
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
    SELECT * FROM pairs
    WHERE next_h - hour > interval '1 hour' OR (next_h IS NULL AND hour < end_h)
),"""

# The estimate of every hour of the gaps (CTE `gaps`: wid, meter_id, tariff_id, start_h, end_h,
# hour and wh of the read before the gap, next_h and next_wh of the read after it or NULL), and
# the register it implies at each of those hours (CTE `gr`). Both computations use this part.
_ESTIMATE_SQL = """
need AS (
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
), gr AS (
    SELECT gc.*, a_wh + COALESCE(sum(cons) OVER (PARTITION BY wid, a_h ORDER BY hour
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS register
    FROM gc
)"""

# The reference computation, hour by hour in SQL: each hour put in its tariff version and band
# by its local time and summed. Kept as the specification the fast path is tested against.
REFERENCE_SQL = "".join(
    (
        _PAIRS_SQL,
        _ESTIMATE_SQL,
        """, hours AS (
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
    SELECT wid, start_h, end_h, hour, register, true FROM gr WHERE hour <> a_h
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
""",
    )
)

# The fast path's reads, one row per window: its reads of [start, end] (both ends inclusive) as
# two byte strings of big-endian binary values (microseconds since 2000, Wh) that numpy reads in
# one go, and the last read before its start and the first after its end. PostgreSQL only walks
# the index; the arithmetic is done by the caller. Both aggregates take the rows in one order,
# so the i-th value of each belongs to one read (the caller sorts them if they are not in order).
READS_SQL = """
WITH w AS (
    SELECT * FROM unnest(%(wid)s::int[], %(meter)s::bigint[],
                         %(start)s::timestamptz[], %(end)s::timestamptz[])
        AS w(wid, meter_id, start_h, end_h)
)
SELECT w.wid, a.hours, a.whs,
       timestamptz_send(lo.hour), lo.wh, timestamptz_send(hi.hour), hi.wh
FROM w
CROSS JOIN LATERAL (
    SELECT string_agg(timestamptz_send(r.hour), '') AS hours,
           string_agg(int8send(r.wh), '') AS whs
    FROM readings_reading r
    WHERE r.meter_id = w.meter_id AND r.hour >= w.start_h AND r.hour <= w.end_h) a
LEFT JOIN LATERAL (
    SELECT r.hour, r.wh FROM readings_reading r
    WHERE r.meter_id = w.meter_id AND r.hour < w.start_h
      AND r.hour >= w.start_h - %(look)s::interval
    ORDER BY r.hour DESC LIMIT 1) lo ON true
LEFT JOIN LATERAL (
    SELECT r.hour, r.wh FROM readings_reading r
    WHERE r.meter_id = w.meter_id AND r.hour > w.end_h
      AND r.hour <= w.end_h + %(look)s::interval
    ORDER BY r.hour LIMIT 1) hi ON true
"""

# The fast path's estimates: the gaps it found, each hour of them estimated as the reference
# does (the same SQL), returned with the register at that hour.
GAPS_SQL = "".join(
    (
        """
WITH w AS (
    SELECT * FROM unnest(%(wid)s::int[], %(meter)s::bigint[], %(tariff)s::bigint[],
                         %(start)s::timestamptz[], %(end)s::timestamptz[])
        AS w(wid, meter_id, tariff_id, start_h, end_h)
), gaps AS (
    -- instants in whole seconds since 1970 (exact in to_timestamp's double precision)
    SELECT w.*, to_timestamp(g.a_s) AS hour, g.a_wh AS wh,
        to_timestamp(g.b_s) AS next_h, g.b_wh AS next_wh
    FROM unnest(%(gap_wid)s::int[], %(a_s)s::bigint[], %(a_wh)s::bigint[],
                %(b_s)s::bigint[], %(b_wh)s::bigint[]) AS g(wid, a_s, a_wh, b_s, b_wh)
    JOIN w ON w.wid = g.wid
),""",
        _ESTIMATE_SQL,
        """
SELECT wid, extract(epoch FROM hour)::bigint, cons, register, hour <> a_h FROM gr
WHERE (hour >= start_h AND hour < end_h) OR hour = start_h OR hour = end_h
""",
    )
)


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
    return setting("BILLING_READ_DATABASE")


def query_parameters(windows: list[Window]) -> dict:
    return {
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
        - timedelta(days=setting("BILLING_PROFILE_DAYS")),
        "linear_max": timedelta(hours=setting("BILLING_LINEAR_GAP_MAX_HOURS")),
        "tz": setting("BILLING_TIME_ZONE"),
    }


def _session(cursor) -> None:
    # The window functions sort the hours of a batch; keep those sorts in memory.
    cursor.execute("SET LOCAL work_mem = '64MB'")
    # The planner's row estimates for the unnested windows are far off, and compiling the
    # query (JIT) took longer than running it.
    cursor.execute("SET LOCAL jit = off")


def reference_window_usage(
    windows: list[Window], *, using: str | None = None
) -> dict[int, WindowUsage]:
    """`window_usage` computed hour by hour in SQL (REFERENCE_SQL): the specification the fast
    path is tested against, about three times slower."""
    result = {w.wid: WindowUsage(w) for w in windows}
    if not windows:
        return result
    alias = using or read_alias()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        _session(cursor)
        cursor.execute(REFERENCE_SQL, query_parameters(windows))
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


# Instants as integer microseconds since 2000-01-01 UTC: PostgreSQL's binary timestamptz.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000


def to_us(moment: datetime) -> int:
    return (moment - PG_EPOCH) // timedelta(microseconds=1)


Key = tuple[int | None, str | None]


@dataclass(frozen=True)
class Calendar:
    """A tariff's local-time calendar: runs of UTC hours that fall in the same tariff versions
    and bands. `bounds[i]` to `bounds[i + 1]` (microseconds) is run i, priced under `keys[i]`
    (several keys only for overlapping versions or bands, which rating then refuses)."""

    bounds: np.ndarray
    keys: list[tuple[Key, ...]]

    def run_of(self, moment_us: int) -> int:
        return int(np.searchsorted(self.bounds, moment_us, side="right")) - 1


def calendars(
    tariff_ids: set[int], start: datetime, end: datetime, *, using: str
) -> dict[int, Calendar]:
    """The calendars of the tariffs over [start, end), computed once per batch: each UTC hour
    placed in its versions by its local date and in its bands by its local time (DST days have
    23 or 25 hours), by the rule of each version's kind."""
    zone = ZoneInfo(setting("BILLING_TIME_ZONE"))
    versions: dict[int, list[TariffVersion]] = defaultdict(list)
    for version in (
        TariffVersion.objects.using(using)
        .filter(tariff_id__in=tariff_ids)
        .prefetch_related("bands")
    ):
        versions[version.tariff_id].append(version)
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [first + timedelta(hours=i) for i in range(ceil((end - first) / timedelta(hours=1)))]
    local = [hour.astimezone(zone) for hour in hours]
    result = {}
    for tariff_id in tariff_ids:
        bounds, keys = [], []
        for hour, at in zip(hours, local, strict=True):
            day = at.date()
            here = tuple(
                (version.pk, band)
                for version in versions[tariff_id]
                if version.valid_from <= day < (version.valid_to or date.max)
                for band in bands_at(version, at)
            ) or ((None, None),)
            if not keys or keys[-1] != here:
                bounds.append(to_us(hour))
                keys.append(here)
        bounds.append(to_us(end))
        result[tariff_id] = Calendar(np.array(bounds, dtype=np.int64), keys)
    return result


def _points(cursor, windows: list[Window], params: dict) -> tuple[np.ndarray, ...]:
    """The reads each window's consumption is computed from, as the reference takes them: from
    the last read at or before its start to the first at or after its end, with a swap's
    anchor registers in place of the reads at its ends. Returns (window index, instant in
    microseconds, Wh), sorted by window and instant."""
    index = {w.wid: i for i, w in enumerate(windows)}
    cursor.execute(READS_SQL, params)
    parts_w, parts_h, parts_v = [], [], []
    for wid, hours, whs, lo_h, lo_wh, hi_h, hi_wh in cursor.fetchall():
        i = index[wid]
        window = windows[i]
        start, end = to_us(window.start), to_us(window.end)
        h = np.frombuffer(hours or b"", ">i8").astype(np.int64)
        v = np.frombuffer(whs or b"", ">i8").astype(np.int64)
        if h.size > 1 and not (h[1:] > h[:-1]).all():
            order = np.argsort(h)
            h, v = h[order], v[order]
        head_h, head_v, tail_h, tail_v = [], [], [], []
        if window.start_anchor is not None:
            keep = h != start
            h, v = h[keep], v[keep]
            head_h, head_v = [start], [window.start_anchor]
        elif lo_h is not None and not (h.size and h[0] == start):
            head_h, head_v = [int.from_bytes(lo_h, "big", signed=True)], [lo_wh]
        if window.end_anchor is not None:
            keep = h != end
            h, v = h[keep], v[keep]
            tail_h, tail_v = [end], [window.end_anchor]
        elif hi_h is not None and not (h.size and h[-1] == end):
            tail_h, tail_v = [int.from_bytes(hi_h, "big", signed=True)], [hi_wh]
        if head_h or tail_h:
            h = np.concatenate((np.array(head_h, np.int64), h, np.array(tail_h, np.int64)))
            v = np.concatenate((np.array(head_v, np.int64), v, np.array(tail_v, np.int64)))
        parts_w.append(np.full(h.size, i, np.int64))
        parts_h.append(h)
        parts_v.append(v)
    if not parts_h:
        return (np.zeros(0, np.int64),) * 3
    return np.concatenate(parts_w), np.concatenate(parts_h), np.concatenate(parts_v)


@dataclass
class _Sums:
    """Per key of one window: actual Wh (int), estimated Wh (Decimal), whether any hour."""

    actual: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    estimated: dict[Key, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    seen: set[Key] = field(default_factory=set)


def window_usage(windows: list[Window], *, using: str | None = None) -> dict[int, WindowUsage]:
    """Consumption per tariff version and band, and opening/closing registers, per window.

    Equal to `reference_window_usage` to the Wh, faster: PostgreSQL only returns the reads (as
    binary arrays); between two consecutive hourly reads the hour's consumption is their
    difference (a step backwards counts nothing), so each run of hours in one version and band
    (its tariff's calendar, computed once per batch) is summed at once with numpy, without a
    row per hour. Only the gaps' hours go back to SQL, to be estimated (GAPS_SQL)."""
    result = {w.wid: WindowUsage(w) for w in windows}
    if not windows:
        return result
    alias = using or read_alias()
    params = query_parameters(windows)
    cals = calendars(
        {w.tariff_id for w in windows},
        min(w.start for w in windows),
        max(w.end for w in windows),
        using=alias,
    )
    sums: dict[int, _Sums] = {w.wid: _Sums() for w in windows}
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        _session(cursor)
        points = _points(cursor, windows, params)
        gaps = _actual_hours(windows, points, cals, result, sums)
        estimates = _estimate(cursor, params, gaps) if gaps else []
    by_wid = {w.wid: w for w in windows}
    for wid, at, cons, register, inside in estimates:
        window = by_wid[wid]
        start, end = to_us(window.start), to_us(window.end)
        if start <= at < end:
            cal = cals[window.tariff_id]
            for key in cal.keys[cal.run_of(at)]:
                sums[wid].estimated[key] += cons
                sums[wid].seen.add(key)
        if inside and at == start:
            result[wid].opening_wh, result[wid].opening_estimated = register, True
        if inside and at == end:
            result[wid].closing_wh, result[wid].closing_estimated = register, True
    with localcontext() as exact:
        exact.prec = 60  # sums of PostgreSQL numerics: no rounding before the rating's own
        for wid, tally in sums.items():
            result[wid].usage = {
                key: Usage(
                    tally.actual.get(key, 0) + tally.estimated.get(key, Decimal(0)),
                    tally.estimated.get(key, Decimal(0)),
                    key in tally.estimated,
                )
                for key in tally.seen
            }
    return result


def _actual_hours(
    windows: list[Window], points: tuple[np.ndarray, ...], cals: dict, result: dict, sums: dict
) -> list[tuple[Window, int, int, int | None, int | None]]:
    """Sum the hours between consecutive actual reads per window and run of its calendar, note
    the actual opening/closing registers, and return the gaps (read before, read after)."""
    w, h, v = points
    starts = np.array([to_us(x.start) for x in windows], np.int64)
    ends = np.array([to_us(x.end) for x in windows], np.int64)
    for i in np.flatnonzero(h == starts[w]):
        result[windows[w[i]].wid].opening_wh = Decimal(int(v[i]))
        result[windows[w[i]].wid].opening_estimated = False
    for i in np.flatnonzero(h == ends[w]):
        result[windows[w[i]].wid].closing_wh = Decimal(int(v[i]))
        result[windows[w[i]].wid].closing_estimated = False
    if not h.size:
        return []
    same = w[1:] == w[:-1]
    pw, hour, step, used = w[:-1], h[:-1], np.diff(h), np.diff(v)
    actual = same & (step == HOUR_US) & (hour >= starts[pw]) & (hour < ends[pw])
    pw, hour, used = pw[actual], hour[actual], np.maximum(used[actual], 0)
    # The calendar run of each hour, per tariff; pairs are in (window, hour) order, so equal
    # (window, run) pairs are consecutive and sum with one reduceat.
    run = np.zeros(hour.size, np.int64)
    tariff = np.array([x.tariff_id for x in windows], np.int64)
    for tariff_id, cal in cals.items():
        mine = tariff[pw] == tariff_id
        run[mine] = np.searchsorted(cal.bounds, hour[mine], side="right") - 1
    if hour.size:
        first = np.flatnonzero(
            np.concatenate(([True], (pw[1:] != pw[:-1]) | (run[1:] != run[:-1])))
        )
        totals = np.add.reduceat(used, first)
        for at, wh in zip(first.tolist(), totals.tolist(), strict=True):
            window = windows[pw[at]]
            tally = sums[window.wid]
            for key in cals[window.tariff_id].keys[run[at]]:
                tally.actual[key] += wh
                tally.seen.add(key)
    gaps = [
        (windows[w[i]], int(h[i]), int(v[i]), int(h[i + 1]), int(v[i + 1]))
        for i in np.flatnonzero(same & (step > HOUR_US))
    ]
    last = np.flatnonzero(np.concatenate((~same, [True])))
    gaps += [(windows[w[i]], int(h[i]), int(v[i]), None, None) for i in last if h[i] < ends[w[i]]]
    return gaps


def _estimate(cursor, params: dict, gaps: list) -> list[tuple]:
    """Each hour of the gaps estimated by GAPS_SQL: (wid, hour in seconds since 1970, Wh,
    register at the hour, whether the hour is inside the gap rather than its first read)."""
    seconds = (PG_EPOCH - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)

    def unix(value: int | None) -> int | None:
        return None if value is None else value // 1_000_000 + seconds

    cursor.execute(
        GAPS_SQL,
        {
            **params,
            "gap_wid": [w.wid for w, *_ in gaps],
            "a_s": [unix(a_h) for _, a_h, _, _, _ in gaps],
            "a_wh": [a_wh for _, _, a_wh, _, _ in gaps],
            "b_s": [unix(b_h) for _, _, _, b_h, _ in gaps],
            "b_wh": [b_wh for *_, b_wh in gaps],
        },
    )
    return [
        (wid, (unix_s - seconds) * 1_000_000, cons, register, inside)
        for wid, unix_s, cons, register, inside in cursor.fetchall()
    ]


def combined_usage(items: list[WindowUsage]) -> dict[tuple[int | None, str | None], Usage]:
    """The usage of several meter windows (a swap) added up per version and band."""
    total: dict[tuple[int | None, str | None], Usage] = defaultdict(Usage)
    for item in items:
        for key, usage in item.usage.items():
            total[key].add(usage)
    return dict(total)
