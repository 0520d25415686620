"""The detectors: set-based SQL over readings, inbound messages and meter events.

Each detector is one or two SQL statements that return only the meters it flags, with the
evidence already aggregated (JSON) by the database; Python never loops over readings. The two
consumption detectors share one temporary table of daily consumption per meter, built once per
scan with a plain GROUP BY (no sort, no window) over the readings of the look-back period.

PostgreSQL's percentile_cont, FILTER and json_agg do the work; docs/fraud.md explains each
detector and its thresholds (fraud/conf.py).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import conf
from .models import Cause, Severity

DAILY_TABLE = "fraud_daily"
BASELINE_TABLE = "fraud_baseline"


@dataclass(frozen=True)
class Finding:
    meter_id: int
    cause: str
    severity: int
    summary: str
    # The newest datum behind the finding: a case closed after it is not reopened by it.
    since: datetime
    evidence: dict[str, Any] = field(default_factory=dict)


def config(name: str) -> dict[str, Any]:
    return conf.detector(name)


def _day_start(day: date, now: datetime) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=now.tzinfo)


def _rows(cursor, sql: str, params: dict[str, Any]) -> list[tuple]:
    cursor.execute(sql, params)
    return cursor.fetchall()


def _loads(value: Any) -> Any:
    # psycopg returns json as Python objects; keep strings working for other adapters.
    return json.loads(value) if isinstance(value, str) else value


def daily_days_needed() -> int:
    drop, zero = config("consumption_drop"), config("zero_use")
    return max(drop["baseline_days"] + drop["monitor_days"], zero["history_days"] + zero["days"])


def monitor_start(today: date) -> date:
    return today - timedelta(days=config("consumption_drop")["monitor_days"])


# Readings at these UTC hours split a day into six 4-hour blocks (00-04 ... 20-24), the
# time-of-day profile of the load-shape detector and the vacancy test.
BLOCK_HOURS = (4, 8, 12, 16, 20)
BLOCKS = tuple(f"b{i}" for i in range(6))
BLOCK_LABELS = ("00-04", "04-08", "08-12", "12-16", "16-20", "20-24")
BLOCKS_IDX = range(len(BLOCKS))


def prepare_daily(cursor, *, now: datetime) -> None:
    """Daily consumption per meter and UTC day of the look-back period, with its six 4-hour
    blocks, into temporary tables dropped at the end of the transaction:

    * `fraud_daily` (meter, day, wh, b0..b5, weekend, absent, vacant): a day's use is the
      register at the next midnight minus the register at this midnight (scaled to 24 h by
      the span covered when either reading is missing); days with fewer than
      FRAUD_MIN_HOURS_PER_DAY readings are left out, so a gap never looks like a drop (the
      silence detector handles gaps). Days before the meter's latest recorded move-in are left
      out too: a new household starts a new baseline. `absent` marks days the customer
      declared an absence; `vacant` days look like nobody home (see `baseline`).
    * `fraud_baseline` (meter: weekday and weekend median of log use, robust scale, block
      means and spreads): the meter's own baseline over the days before the monitoring window.
    """
    cfg = config("consumption_drop")
    vacancy = conf.setting("VACANCY")
    today = now.date()
    params = {
        "start": _day_start(today - timedelta(days=daily_days_needed()), now),
        "end": _day_start(today, now),
        "today": today,
        "now": now,
        "min_hours": conf.setting("MIN_HOURS_PER_DAY"),
        "monitor_start": monitor_start(today),
        "min_days": cfg["min_baseline_days"],
        "min_scale": cfg["min_scale"],
        "vacant_low": vacancy["min_base_multiple"],
        "vacant_high": vacancy["max_base_multiple"],
        "flat_ratio": vacancy["max_block_ratio"],
        "vacant_sd": vacancy["max_log_sd"],
    }
    at_hour = ",\n".join(
        f"max(wh) FILTER (WHERE extract(hour FROM hour AT TIME ZONE 'UTC') = {h}) AS wh{h}"
        for h in BLOCK_HOURS
    )
    # The daily GROUP BY keeps a few registers per meter-day: with the default work_mem its hash
    # table spills to disk and PostgreSQL falls back to sorting tens of millions of rows.
    cursor.execute("SELECT set_config('work_mem', %s, true)", [conf.setting("SCAN_WORK_MEM")])
    cursor.execute(f"DROP TABLE IF EXISTS {DAILY_TABLE}, {BASELINE_TABLE}")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {DAILY_TABLE} ON COMMIT DROP AS
        WITH raw AS (
            SELECT meter_id, (hour AT TIME ZONE 'UTC')::date AS day,
                   min(hour) AS first_hour, min(wh) AS first_wh,
                   max(hour) AS last_hour, max(wh) AS last_wh, count(*) AS hours,
                   {at_hour}
            FROM readings_reading
            WHERE hour >= %(start)s AND hour <= %(end)s
            GROUP BY meter_id, day
        ),
        seq AS (
            SELECT raw.*, (day::timestamp AT TIME ZONE 'UTC') AS midnight,
                   CASE WHEN lead(first_hour) OVER w
                             = ((day + 1)::timestamp AT TIME ZONE 'UTC')
                        THEN lead(first_wh) OVER w END AS next_wh
            FROM raw WINDOW w AS (PARTITION BY meter_id ORDER BY day)
        ),
        moved AS (
            SELECT m.id AS meter_id, greatest(
                (SELECT max(o.start AT TIME ZONE 'UTC')::date FROM accounts_meteroccupancy o
                 WHERE o.meter_id = m.id AND o.start <= %(now)s
                   AND EXISTS (SELECT 1 FROM accounts_meteroccupancy p
                               WHERE p.meter_id = m.id AND p.start < o.start)),
                (SELECT max(b.opened_on) FROM billing_billingaccount b
                 WHERE b.premises_id = m.premises_id AND b.opened_on <= %(today)s)
            ) AS day
            FROM devices_meter m
        )
        SELECT s.meter_id, s.day,
               (CASE WHEN s.next_wh IS NOT NULL
                     THEN (s.next_wh - s.first_wh) * 24.0
                          / (24 - extract(epoch FROM s.first_hour - s.midnight) / 3600.0)
                     ELSE (s.last_wh - s.first_wh) * 24.0
                          / (extract(epoch FROM s.last_hour - s.first_hour) / 3600.0)
                END)::float8 AS wh,
               (CASE WHEN s.first_hour = s.midnight THEN s.wh4 - s.first_wh END)::float8 AS b0,
               (s.wh8 - s.wh4)::float8 AS b1, (s.wh12 - s.wh8)::float8 AS b2,
               (s.wh16 - s.wh12)::float8 AS b3, (s.wh20 - s.wh16)::float8 AS b4,
               (s.next_wh - s.wh20)::float8 AS b5,
               extract(isodow FROM s.day) >= 6 AS weekend,
               EXISTS (SELECT 1 FROM fraud_absence a WHERE a.meter_id = s.meter_id
                       AND s.day BETWEEN a.first_day AND a.last_day) AS absent,
               false AS vacant
        FROM seq s LEFT JOIN moved mv ON mv.meter_id = s.meter_id
        WHERE s.day < %(today)s AND s.hours >= %(min_hours)s
          AND (s.next_wh IS NOT NULL OR s.last_hour > s.first_hour)
          AND (mv.day IS NULL OR s.day >= mv.day)
        """,  # noqa: S608 (identifiers are constants; values are parameters)
        params,
    )
    cursor.execute(f"CREATE INDEX ON {DAILY_TABLE} (meter_id, day)")
    # A vacant day: total use near the home's base load (the quietest night block of its
    # baseline, x6) and no 4-hour block much above another: fridge and standby cycling with
    # nobody home, where a bypass of a fraction keeps the day's shape and its total falls below
    # the base. Days left this way vary little from one to the next; when a meter's candidate
    # days of one period (baseline or monitoring) vary like its normal days, they are a
    # fraction of the load removed (h4), not vacancy, and count again.
    cursor.execute(
        f"""
        UPDATE {DAILY_TABLE} d SET vacant = true
        FROM (SELECT meter_id, percentile_cont(0.1) WITHIN GROUP (ORDER BY b0) * 6 AS base_wh
              FROM {DAILY_TABLE} WHERE day < %(monitor_start)s AND NOT absent AND b0 > 0
              GROUP BY meter_id) b
        WHERE b.meter_id = d.meter_id
          AND d.wh BETWEEN %(vacant_low)s * b.base_wh AND %(vacant_high)s * b.base_wh
          AND greatest(d.b0, d.b1, d.b2, d.b3, d.b4, d.b5)
              <= %(flat_ratio)s * least(d.b0, d.b1, d.b2, d.b3, d.b4, d.b5)
        """,  # noqa: S608
        params,
    )
    cursor.execute(
        f"""
        UPDATE {DAILY_TABLE} d SET vacant = false
        FROM (SELECT meter_id, day >= %(monitor_start)s AS monitoring FROM {DAILY_TABLE}
              WHERE vacant GROUP BY meter_id, monitoring
              HAVING count(*) >= 3 AND stddev_samp(ln(wh)) > %(vacant_sd)s) v
        WHERE v.meter_id = d.meter_id AND d.vacant
          AND (d.day >= %(monitor_start)s) = v.monitoring
        """,  # noqa: S608
        params,
    )
    block_stats = ",\n".join(
        f"avg(d.{b}) AS {b}_mean, stddev_samp(d.{b}) AS {b}_sd" for b in BLOCKS
    )
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {BASELINE_TABLE} ON COMMIT DROP AS
        WITH days AS (
            SELECT * FROM {DAILY_TABLE}
            WHERE day < %(monitor_start)s AND NOT absent AND NOT vacant AND wh > 0
        ),
        level AS (
            SELECT meter_id, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY ln(wh))
                       FILTER (WHERE NOT weekend) AS ln_weekday,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY ln(wh))
                       FILTER (WHERE weekend) AS ln_weekend
            FROM days GROUP BY meter_id HAVING count(*) >= %(min_days)s
        )
        SELECT l.meter_id, l.n, l.ln_weekday, coalesce(l.ln_weekend, l.ln_weekday) AS ln_weekend,
               greatest(%(min_scale)s, stddev_samp(
                   ln(d.wh) - CASE WHEN d.weekend THEN coalesce(l.ln_weekend, l.ln_weekday)
                                   ELSE l.ln_weekday END)) AS scale,
               {block_stats}
        FROM level l JOIN days d ON d.meter_id = l.meter_id
        WHERE l.ln_weekday IS NOT NULL
        GROUP BY l.meter_id, l.n, l.ln_weekday, l.ln_weekend
        """,  # noqa: S608
        params,
    )
    cursor.execute(f"CREATE UNIQUE INDEX ON {BASELINE_TABLE} (meter_id)")
    cursor.execute(f"ANALYZE {DAILY_TABLE}")
    cursor.execute(f"ANALYZE {BASELINE_TABLE}")


def _daily_series(cursor, meter_ids: list[int]) -> dict[int, list[list]]:
    rows = _rows(
        cursor,
        f"""
        SELECT meter_id,
               json_agg(json_build_array(day, round(wh::numeric), vacant, absent) ORDER BY day)
        FROM {DAILY_TABLE} WHERE meter_id = ANY(%(ids)s) GROUP BY meter_id
        """,  # noqa: S608
        {"ids": meter_ids},
    )
    return {meter_id: _loads(series) for meter_id, series in rows}


def _daily_chart(series: list[list], expected: dict[str, float] | None = None) -> dict[str, Any]:
    labels = [row[0] for row in series]
    datasets = [{"label": "Daily use (Wh)", "data": [row[1] for row in series], "type": "bar"}]
    if expected:
        datasets.append(
            {"label": "Expected from baseline (Wh)", "data": [expected.get(d) for d in labels]}
        )
    return {"labels": labels, "datasets": datasets}


def _away_days(series: list[list]) -> dict[str, list[str]]:
    return {
        "vacant": [row[0] for row in series if row[2]],
        "declared_absent": [row[0] for row in series if row[3]],
    }


# Rooftop solar, over a meter's days `t.days` (SQL, with the solar_gap and solar_max_off
# parameters): use down in daylight (08-16 UTC, against the baseline) by more than solar_gap
# more than in the dark (20-04 UTC), most days with some daylight use, no 4-hour block of the
# dark (20-08 UTC) at nothing on most days, and no block at nothing on nearly every day.
SOLAR_EXEMPT = (
    "{t}.dark - {t}.daylight > %(solar_gap)s AND 2 * {t}.dark_days < {t}.days"
    " AND 2 * {t}.dark_off_days < {t}.days AND {t}.off_days < %(solar_max_off)s * {t}.days"
)


def consumption_drop(cursor, *, now: datetime) -> list[Finding]:
    """A sustained drop against the meter's own baseline: a one-sided CUSUM of standardised log
    daily use (weekday and weekend baselines) over the monitoring window (see docs/fraud.md)."""
    cfg = config("consumption_drop")
    today = now.date()
    start = monitor_start(today)
    params = {
        "monitor_start": start,
        "k": cfg["cusum_k"],
        "h": cfg["cusum_h"],
        "min_days": cfg["min_monitor_days"],
        "clip": cfg["clip"],
        "solar_gap": cfg["solar_gap"],
        "solar_max_off": cfg["solar_max_off_share"],
        "min_baseline": cfg["min_baseline_wh"],
    }
    rows = _rows(
        cursor,
        f"""
        WITH mon AS (
            SELECT d.meter_id, d.day, d.wh, b.scale, d.b0 + d.b5 AS dark, d.b2 + d.b3 AS daylight,
                   least(d.b0, d.b1, d.b2, d.b3, d.b4, d.b5) <= 0 AS block_off,
                   least(d.b0, d.b1, d.b5) <= 0 AS dark_off,
                   b.b0_mean + b.b5_mean AS usual_dark, b.b2_mean + b.b3_mean AS usual_daylight,
                   exp(CASE WHEN d.weekend THEN b.ln_weekend ELSE b.ln_weekday END) AS expected,
                   ln(d.wh) - CASE WHEN d.weekend THEN b.ln_weekend ELSE b.ln_weekday END AS e
            FROM {DAILY_TABLE} d JOIN {BASELINE_TABLE} b ON b.meter_id = d.meter_id
            -- A full stop (no use at all) is zero_use's finding.
            WHERE d.day >= %(monitor_start)s AND NOT d.absent AND NOT d.vacant AND d.wh > 0
              AND exp(b.ln_weekday) >= %(min_baseline)s
        ),
        -- Page's CUSUM of the day's shortfall in standard deviations of the meter's own
        -- baseline, each day clipped so that a single odd day cannot make a case.
        steps AS (
            SELECT m.*,
                   sum(least(%(clip)s, greatest(-%(clip)s, -m.e / m.scale)) - %(k)s)
                       OVER (PARTITION BY m.meter_id ORDER BY m.day) AS cusum
            FROM mon m
        ),
        framed AS (
            SELECT s.*,
                   least(0, min(cusum) OVER (PARTITION BY meter_id)) AS low,
                   last_value(cusum) OVER (PARTITION BY meter_id ORDER BY day
                       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS final,
                   count(*) OVER (PARTITION BY meter_id) AS n
            FROM steps s
        ),
        -- The drop began the day after the CUSUM's last minimum (Page's change-point).
        segmented AS (
            SELECT f.*, coalesce(max(day) FILTER (WHERE cusum = low AND low < 0)
                                 OVER (PARTITION BY meter_id), %(monitor_start)s - 1) AS before
            FROM framed f WHERE final - low >= %(h)s AND n >= %(min_days)s
        ),
        -- MATERIALIZED: computed once, whatever the planner thinks of devices_meter.
        judged AS MATERIALIZED (
            SELECT s.meter_id, max(s.final - s.low) AS statistic,
                   min(s.day) FILTER (WHERE s.day > s.before) AS since,
                   count(*) FILTER (WHERE s.day > s.before) AS days,
                   sum(s.wh) FILTER (WHERE s.day > s.before) AS used,
                   sum(s.expected) FILTER (WHERE s.day > s.before) AS expected,
                   avg(s.dark) FILTER (WHERE s.day > s.before) / max(s.usual_dark) AS dark,
                   avg(s.daylight) FILTER (WHERE s.day > s.before)
                       / max(s.usual_daylight) AS daylight,
                   count(*) FILTER (WHERE s.day > s.before AND s.daylight <= 0)
                       AS dark_days,
                   count(*) FILTER (WHERE s.day > s.before AND s.block_off) AS off_days,
                   count(*) FILTER (WHERE s.day > s.before AND s.dark_off) AS dark_off_days,
                   json_object_agg(s.day, round(s.expected::numeric)) AS expected_by_day
            FROM segmented s
            GROUP BY s.meter_id HAVING count(*) FILTER (WHERE s.day > s.before) > 0
        )
        -- Rooftop solar: the fall is in daylight hours only while nights and evenings carry
        -- on as before, and panels follow the clouds. A bypass takes its fraction around the
        -- clock; a switch that cuts the same hours every day (h2) leaves a 4-hour block at
        -- nothing whatever the weather, or in the dark.
        SELECT j.meter_id, j.statistic, j.since, j.days, j.used, j.expected, j.expected_by_day
        FROM judged j JOIN devices_meter m ON m.id = j.meter_id AND m.status = 'active'
        WHERE NOT ({SOLAR_EXEMPT.format(t="j")})
        """,  # noqa: S608
        params,
    )
    series = _daily_series(cursor, [row[0] for row in rows])
    findings = []
    for meter_id, statistic, since_day, days, used, expected, expected_by_day in rows:
        meter_series = series.get(meter_id, [])
        away = _away_days(meter_series)
        lost_kwh = max(0.0, (expected - used) / 1000)
        drop = 1 - used / expected if expected else 1.0
        severity = _severity_from_loss(lost_kwh, cfg)
        if away["declared_absent"]:
            severity = min(severity, Severity.MEDIUM)
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.CONSUMPTION_DROP,
                severity=severity,
                summary=f"Use {drop:.0%} below this home's own baseline for {days} days since "
                f"{since_day}, about {lost_kwh:.0f} kWh unrecorded; the home's daily pattern "
                "goes on, so part of the load may bypass the meter",
                since=_day_start(since_day, now),
                evidence={
                    "statistic": round(statistic, 2),
                    "drop": round(drop, 3),
                    "estimated_kwh_lost": round(lost_kwh, 1),
                    "since": since_day.isoformat(),
                    "days": days,
                    **away,
                    "thresholds": {key: cfg[key] for key in ("cusum_k", "cusum_h", "high_kwh")},
                    "chart": _daily_chart(meter_series, _loads(expected_by_day)),
                },
            )
        )
    return findings


def load_shape(cursor, *, now: datetime) -> list[Finding]:
    """The time-of-day profile of the last days against the meter's own baseline profile: load
    moved from some hours to others with the daily total kept (see docs/fraud.md)."""
    cfg = config("load_shape")
    today = now.date()
    params = {
        "recent_start": today - timedelta(days=cfg["recent_days"]),
        "min_days": cfg["min_recent_days"],
        "threshold": cfg["threshold"],
        "min_sd": cfg["min_block_sd_fraction"],
    }
    recent = ", ".join(f"avg(d.{b}) AS {b}" for b in BLOCKS)
    z = ", ".join(
        f"(r.{b} - b.{b}_mean) * sqrt(r.n) / greatest(b.{b}_sd, %(min_sd)s * b.{b}_mean, 1) "
        f"AS {b}_z"
        for b in BLOCKS
    )
    zs = ", ".join(f"{b}_z" for b in BLOCKS)
    rows = _rows(
        cursor,
        f"""
        WITH recent AS (
            SELECT d.meter_id, count(*) AS n, {recent}
            FROM {DAILY_TABLE} d
            WHERE d.day >= %(recent_start)s AND NOT d.absent AND NOT d.vacant
              AND d.b0 IS NOT NULL AND d.b5 IS NOT NULL AND d.b1 IS NOT NULL
              AND d.b2 IS NOT NULL AND d.b3 IS NOT NULL AND d.b4 IS NOT NULL
            GROUP BY d.meter_id HAVING count(*) >= %(min_days)s
        ),
        scored AS MATERIALIZED (
            SELECT r.meter_id, {z},
                   json_build_array({", ".join(f"round(r.{b}::numeric)" for b in BLOCKS)}) AS now_p,
                   json_build_array({", ".join(f"round(b.{b}_mean::numeric)" for b in BLOCKS)})
                       AS base_p
            FROM recent r JOIN {BASELINE_TABLE} b ON b.meter_id = r.meter_id
        )
        -- Both a rise and a fall: solar panels or a quieter season only take load away,
        -- working from home only adds it; moving load between hours does both.
        SELECT s.meter_id, least(greatest({zs}), -least({zs})) AS statistic, s.now_p, s.base_p
        FROM scored s JOIN devices_meter m ON m.id = s.meter_id AND m.status = 'active'
        WHERE least(greatest({zs}), -least({zs})) >= %(threshold)s
        """,  # noqa: S608
        params,
    )
    findings = []
    for meter_id, statistic, now_profile, base_profile in rows:
        now_profile, base_profile = _loads(now_profile), _loads(base_profile)
        moves = [n - b for n, b in zip(now_profile, base_profile, strict=True)]
        up, down = moves.index(max(moves)), moves.index(min(moves))
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.LOAD_SHAPE,
                severity=Severity.MEDIUM,
                summary=f"Daily load pattern changed over the last {cfg['recent_days']} days: "
                f"{BLOCK_LABELS[up]} UTC up {moves[up]:.0f} Wh/day, {BLOCK_LABELS[down]} down "
                f"{-moves[down]:.0f} Wh/day against this home's own history; the register may "
                "be reporting a flattened or shifted profile",
                since=_day_start(params["recent_start"], now),
                evidence={
                    "statistic": round(statistic, 2),
                    "thresholds": {"threshold": cfg["threshold"]},
                    "chart": {
                        "labels": [f"{label} UTC" for label in BLOCK_LABELS],
                        "datasets": [
                            {"label": "Baseline (Wh per block per day)", "data": base_profile},
                            {
                                "label": f"Last {cfg['recent_days']} days",
                                "data": now_profile,
                                "type": "bar",
                            },
                        ],
                    },
                },
            )
        )
    return findings


def peer_comparison(cursor, *, now: datetime) -> list[Finding]:
    """The meter's recent use against its own baseline, compared with how similar households
    of the fleet moved over the same days (see docs/fraud.md)."""
    cfg = config("peer_comparison")
    drop = config("consumption_drop")
    today = now.date()
    params = {
        "recent_start": today - timedelta(days=cfg["recent_days"]),
        "min_days": cfg["min_recent_days"],
        "group_size": cfg["group_size"],
        "min_peers": cfg["min_peers"],
        "min_spread": cfg["min_spread"],
        "min_drop": cfg["min_drop"],
        "threshold": cfg["threshold"],
        "min_baseline": drop["min_baseline_wh"],
        "solar_gap": drop["solar_gap"],
        "solar_max_off": drop["solar_max_off_share"],
    }
    rows = _rows(
        cursor,
        f"""
        WITH recent AS (
            SELECT d.meter_id, count(*) AS days, sum(d.wh) AS used,
                   sum(exp(CASE WHEN d.weekend THEN b.ln_weekend ELSE b.ln_weekday END))
                       AS expected,
                   -- The meter's change: mean log use against its own weekday/weekend baseline.
                   avg(ln(d.wh) - CASE WHEN d.weekend THEN b.ln_weekend ELSE b.ln_weekday END)
                       AS change,
                   avg(d.b0 + d.b5) / max(b.b0_mean + b.b5_mean) AS dark,
                   avg(d.b2 + d.b3) / max(b.b2_mean + b.b3_mean) AS daylight,
                   count(*) FILTER (WHERE d.b2 + d.b3 <= 0) AS dark_days,
                   count(*) FILTER (WHERE least(d.b0, d.b1, d.b2, d.b3, d.b4, d.b5) <= 0)
                       AS off_days,
                   count(*) FILTER (WHERE least(d.b0, d.b1, d.b5) <= 0) AS dark_off_days,
                   -- The change's own noise: the home's day-to-day spread over n days.
                   max(b.scale) / sqrt(count(*)) AS own_se,
                   max(b.ln_weekday) AS level,
                   -- The share of the day's use in daylight: at home by day or out at work.
                   max((b.b2_mean + b.b3_mean)
                       / nullif(b.b0_mean + b.b1_mean + b.b2_mean + b.b3_mean + b.b4_mean
                                + b.b5_mean, 0)) AS daytime_share
            FROM {DAILY_TABLE} d JOIN {BASELINE_TABLE} b ON b.meter_id = d.meter_id
            WHERE d.day >= %(recent_start)s AND NOT d.absent AND NOT d.vacant AND d.wh > 0
              AND exp(b.ln_weekday) >= %(min_baseline)s
            GROUP BY d.meter_id HAVING count(*) >= %(min_days)s
        ),
        -- Similar households: the same band of baseline use (household size, appliances)
        -- and, within it, the same band of daytime share (daily routine); about group_size
        -- homes each. ntile reads its argument once per partition.
        banded AS (
            SELECT r.*, ntile((SELECT greatest(1, count(*) / (2 * %(group_size)s))::int
                              FROM recent)) OVER (ORDER BY level) AS level_band
            FROM recent r
        ),
        counted AS (
            SELECT b.*, count(*) OVER (PARTITION BY level_band) AS band_n FROM banded b
        ),
        grouped AS (
            SELECT c.*, ntile(greatest(1, c.band_n / %(group_size)s)::int) OVER (
                       PARTITION BY level_band ORDER BY daytime_share) AS pattern_band
            FROM counted c
        ),
        peers AS (
            SELECT level_band, pattern_band, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY change) AS median
            FROM grouped GROUP BY level_band, pattern_band HAVING count(*) >= %(min_peers)s
        ),
        spread AS (
            SELECT g.level_band, g.pattern_band,
                   1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(g.change - p.median))
                       AS mad
            FROM grouped g JOIN peers p USING (level_band, pattern_band)
            GROUP BY g.level_band, g.pattern_band
        ),
        scored AS MATERIALIZED (
            SELECT g.*, p.n AS peers, p.median AS peer_change,
                   (p.median - g.change)
                       / greatest(sqrt(s.mad ^ 2 + g.own_se ^ 2), %(min_spread)s) AS statistic
            FROM grouped g JOIN peers p USING (level_band, pattern_band)
            JOIN spread s USING (level_band, pattern_band)
        )
        SELECT c.meter_id, c.statistic, c.change, c.peer_change, c.peers, c.days, c.used,
               c.expected
        FROM scored c JOIN devices_meter m ON m.id = c.meter_id AND m.status = 'active'
        WHERE c.statistic >= %(threshold)s
          AND c.peer_change - c.change >= -ln(1 - %(min_drop)s)
          AND NOT ({SOLAR_EXEMPT.format(t="c")})
        """,  # noqa: S608
        params,
    )
    ids = [row[0] for row in rows]
    series, expected_days = _daily_series(cursor, ids), _expected_by_day(cursor, ids)
    findings = []
    for meter_id, statistic, change, peer_change, peers, days, used, expected in rows:
        meter_series = series.get(meter_id, [])
        away = _away_days(meter_series)
        # What the home would have used had it moved like its peers.
        factor = math.exp(peer_change)
        lost_kwh = max(0.0, (expected * factor - used) / 1000)
        severity = _severity_from_loss(lost_kwh, drop)
        if away["declared_absent"]:
            severity = min(severity, Severity.MEDIUM)
        mine, theirs = math.exp(change) - 1, factor - 1
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.PEER_COMPARISON,
                severity=severity,
                summary=f"Use {_percent(mine)} against this home's own baseline over the last "
                f"{days} days while {peers} similar homes of the fleet went "
                f"{_percent(theirs)}; about {lost_kwh:.0f} kWh unrecorded: the change is this "
                "home's, not the season's",
                since=_day_start(params["recent_start"], now),
                evidence={
                    "statistic": round(statistic, 2),
                    "change": round(mine, 3),
                    "peer_change": round(theirs, 3),
                    "peers": peers,
                    "days": days,
                    "estimated_kwh_lost": round(lost_kwh, 1),
                    **away,
                    "thresholds": {key: cfg[key] for key in ("threshold", "min_drop")},
                    "chart": _daily_chart(
                        meter_series,
                        {
                            day: round(wh * factor)
                            for day, wh in expected_days.get(meter_id, {}).items()
                            if day >= params["recent_start"].isoformat()
                        },
                    ),
                },
            )
        )
    return findings


def _percent(change: float) -> str:
    return f"{'up' if change >= 0 else 'down'} {abs(change):.0%}"


def _severity_from_loss(lost_kwh: float, cfg: dict[str, Any]) -> int:
    if lost_kwh >= cfg["high_kwh"]:
        return Severity.HIGH
    if lost_kwh >= cfg["medium_kwh"]:
        return Severity.MEDIUM
    return Severity.LOW


def _expected_by_day(cursor, meter_ids: list[int]) -> dict[int, dict[str, float]]:
    """Each meter's baseline use of each day of the daily table (weekday or weekend)."""
    rows = _rows(
        cursor,
        f"""
        SELECT d.meter_id, json_object_agg(
                   d.day, round(exp(CASE WHEN d.weekend THEN b.ln_weekend
                                         ELSE b.ln_weekday END)::numeric))
        FROM {DAILY_TABLE} d JOIN {BASELINE_TABLE} b ON b.meter_id = d.meter_id
        WHERE d.meter_id = ANY(%(ids)s) GROUP BY d.meter_id
        """,  # noqa: S608
        {"ids": meter_ids},
    )
    return {meter_id: _loads(days) for meter_id, days in rows}


def zero_use(cursor, *, now: datetime) -> list[Finding]:
    """Nothing recorded at an occupied premises: for several full days, or for the same hours
    of the dark on most days (see docs/fraud.md). One finding per meter, full days first."""
    found = {f.meter_id: f for f in _zero_hours(cursor, now=now)}
    found.update({f.meter_id: f for f in _zero_days(cursor, now=now)})
    return list(found.values())


# The blocks of the dark all year (00-08 and 20-24 UTC): panels never cover them.
DARK_BLOCKS = (0, 1, 5)


def _zero_hours(cursor, *, now: datetime) -> list[Finding]:
    """A 4-hour block of the dark with nothing recorded on most recent days, where the home's
    baseline always used something then (a fridge alone does): the hours a switch or timer
    takes the supply round the meter (h2), however little energy they carry."""
    cfg = config("zero_use")
    today = now.date()
    params = {
        "today": today,
        "since": today - timedelta(days=cfg["block_days"]),
        "min_days": cfg["block_min_days"],
        "min_wh": cfg["min_block_wh"],
    }
    counts = ",\n".join(
        f"count(*) FILTER (WHERE d.b{i} <= 0 AND b.b{i}_mean >= %(min_wh)s) AS off{i}"
        for i in DARK_BLOCKS
    )
    most = "greatest(" + ", ".join(f"off{i}" for i in DARK_BLOCKS) + ")"
    usual = ", ".join(f"round(max(b.b{i}_mean)::numeric)" for i in BLOCKS_IDX)
    rows = _rows(
        cursor,
        f"""
        WITH recent AS (
            SELECT d.meter_id, count(*) AS days, {counts},
                   json_build_array({usual}) AS usual
            FROM {DAILY_TABLE} d JOIN {BASELINE_TABLE} b ON b.meter_id = d.meter_id
            WHERE d.day >= %(since)s AND d.day < %(today)s AND NOT d.absent
            GROUP BY d.meter_id
        )
        SELECT r.meter_id, r.days, {", ".join(f"r.off{i}" for i in DARK_BLOCKS)}, r.usual
        FROM recent r
        JOIN devices_meter m ON m.id = r.meter_id
        WHERE m.status = 'active' AND m.premises_id IS NOT NULL AND {most} >= %(min_days)s
        """,  # noqa: S608
        params,
    )
    series = _daily_series(cursor, [row[0] for row in rows])
    findings = []
    for meter_id, days, *offs, usual in rows:
        usual = _loads(usual)
        off_days, block = max(zip(offs, DARK_BLOCKS, strict=True))
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.ZERO_USE,
                severity=Severity.MEDIUM,
                summary=f"Nothing recorded between {BLOCK_LABELS[block].replace('-', ':00 and ')}"
                f":00 UTC on {off_days} of the last {days} days, where this home used "
                f"{usual[block]} Wh then; a switch or timer may take the supply round the meter "
                "at those hours",
                since=_day_start(params["since"], now),
                evidence={
                    "block": f"{BLOCK_LABELS[block]} UTC",
                    "days_with_nothing": off_days,
                    "days": days,
                    "baseline_wh_per_block": usual,
                    "thresholds": {
                        key: cfg[key] for key in ("block_days", "block_min_days", "min_block_wh")
                    },
                    **_away_days(series.get(meter_id, [])),
                    "chart": _daily_chart(series.get(meter_id, [])),
                },
            )
        )
    return findings


def _zero_days(cursor, *, now: datetime) -> list[Finding]:
    """No consumption for several full days at an occupied premises."""
    cfg = config("zero_use")
    today = now.date()
    window_start = today - timedelta(days=cfg["days"])
    params = {
        "today": today,
        "window_start": window_start,
        "history_start": window_start - timedelta(days=cfg["history_days"]),
        "days": cfg["days"],
        "max_wh": cfg["max_wh_per_day"],
        "min_history": cfg["min_history_wh_per_day"],
        "min_history_days": cfg["history_days"] // 2,
    }
    rows = _rows(
        cursor,
        f"""
        WITH recent AS (
            SELECT meter_id, max(wh) AS max_wh, bool_or(absent) AS absent FROM {DAILY_TABLE}
            WHERE day >= %(window_start)s AND day < %(today)s
            GROUP BY meter_id
            HAVING count(*) = %(days)s AND max(wh) <= %(max_wh)s
        ),
        history AS (
            SELECT d.meter_id, avg(d.wh) AS avg_wh, count(*) AS n
            FROM {DAILY_TABLE} d JOIN recent r ON r.meter_id = d.meter_id
            WHERE d.day >= %(history_start)s AND d.day < %(window_start)s
            GROUP BY d.meter_id
        )
        SELECT r.meter_id, h.avg_wh, r.max_wh, r.absent
        FROM recent r
        JOIN history h ON h.meter_id = r.meter_id
        JOIN devices_meter m ON m.id = r.meter_id
        WHERE m.status = 'active' AND m.premises_id IS NOT NULL
          AND h.n >= %(min_history_days)s AND h.avg_wh >= %(min_history)s
        """,  # noqa: S608
        params,
    )
    series = _daily_series(cursor, [row[0] for row in rows])
    return [
        Finding(
            meter_id=meter_id,
            cause=Cause.ZERO_USE,
            # Supply switched off at the fuse board while away is possible; a visit can wait.
            severity=Severity.MEDIUM if absent else Severity.HIGH,
            summary=f"No consumption for {cfg['days']} full days; {avg_wh:.0f} Wh/day before"
            + (" (the customer declared an absence)" if absent else ""),
            since=_day_start(window_start, now),
            evidence={
                "history_avg_wh_per_day": round(avg_wh),
                "max_wh_per_day_in_window": round(max_wh),
                "window": [window_start.isoformat(), (today - timedelta(days=1)).isoformat()],
                **_away_days(series.get(meter_id, [])),
                "chart": _daily_chart(series.get(meter_id, [])),
            },
        )
        for meter_id, avg_wh, max_wh, absent in rows
    ]


def silent(cursor, *, now: datetime) -> list[Finding]:
    """Active meters not heard from for longer than the configured hours (S7 escalated)."""
    cfg = config("silent")
    rows = _rows(
        cursor,
        """
        SELECT m.id, m.last_message_at,
               COALESCE(m.last_message_at, m.status_changed_at, m.registered_at) AS since,
               a.opened_at,
               (SELECT max(r.hour) FROM readings_reading r WHERE r.meter_id = m.id)
        FROM devices_meter m
        LEFT JOIN devices_meteralert a
            ON a.meter_id = m.id AND a.kind = 'silent' AND a.closed_at IS NULL
        WHERE m.status = 'active'
          AND COALESCE(m.last_message_at, m.status_changed_at, m.registered_at) < %(limit)s
        """,
        {"limit": now - timedelta(hours=cfg["hours"])},
    )
    findings = []
    for meter_id, last_message_at, since, alert_opened_at, last_hour in rows:
        hours = (now - since).total_seconds() / 3600
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.SILENT,
                severity=Severity.HIGH if hours >= cfg["high_after_hours"] else Severity.MEDIUM,
                summary=f"Silent for {hours:.0f} hours",
                since=since,
                evidence={
                    "last_message_at": last_message_at.isoformat() if last_message_at else None,
                    "silent_hours": round(hours),
                    "gateway_alert_opened_at": alert_opened_at.isoformat()
                    if alert_opened_at
                    else None,
                    "last_reading_hour": last_hour.isoformat() if last_hour else None,
                    "thresholds": {"hours": cfg["hours"]},
                },
            )
        )
    return findings


def backwards(cursor, *, now: datetime) -> list[Finding]:
    """A cumulative register lower than the reading of the hour before it (LAG over hour)."""
    cfg = config("backwards")
    since = now - timedelta(hours=cfg["lookback_hours"])
    rows = _rows(
        cursor,
        """
        WITH steps AS (
            SELECT meter_id, hour, wh,
                   lag(wh) OVER w AS prev_wh, lag(hour) OVER w AS prev_hour
            FROM readings_reading
            WHERE hour >= %(since)s
            WINDOW w AS (PARTITION BY meter_id ORDER BY hour)
        )
        SELECT s.meter_id, count(*), max(s.prev_wh - s.wh), max(s.hour),
               json_agg(json_build_array(s.prev_hour, s.prev_wh, s.hour, s.wh) ORDER BY s.hour)
        FROM steps s JOIN devices_meter m ON m.id = s.meter_id AND m.status = 'active'
        WHERE s.prev_wh - s.wh >= %(min_step)s
        GROUP BY s.meter_id
        """,
        {"since": since, "min_step": cfg["min_step_wh"]},
    )
    charts = dict(
        _rows(
            cursor,
            """
            SELECT meter_id, json_agg(json_build_array(hour, wh) ORDER BY hour)
            FROM readings_reading WHERE meter_id = ANY(%(ids)s) AND hour >= %(since)s
            GROUP BY meter_id
            """,
            {"ids": [row[0] for row in rows], "since": since},
        )
    )
    findings = []
    for meter_id, count, largest, latest, steps in rows:
        points = _loads(charts.get(meter_id)) or []
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.BACKWARDS,
                severity=Severity.HIGH if largest >= cfg["high_step_wh"] else Severity.MEDIUM,
                summary=f"Register went backwards {count} times (largest {largest} Wh)",
                since=latest,
                evidence={
                    "steps": [
                        {"prev_hour": a, "prev_wh": b, "hour": c, "wh": d}
                        for a, b, c, d in _loads(steps)[:50]
                    ],
                    "largest_step_wh": largest,
                    "chart": {
                        "labels": [hour for hour, _ in points],
                        "datasets": [
                            {"label": "Cumulative register (Wh)", "data": [w for _, w in points]}
                        ],
                    },
                },
            )
        )
    return findings


def auth_failures(cursor, *, now: datetime) -> list[Finding]:
    """Bursts of rejected messages (bad tag, replay, stale counter, unknown key) from one SIM."""
    cfg = config("auth_failures")
    rows = _rows(
        cursor,
        """
        WITH fails AS (
            SELECT i.sender, i.reason, i.received_at,
                   COALESCE(s.meter_id, i.meter_id) AS meter_id
            FROM smsgateway_inboundmessage i
            LEFT JOIN devices_sim s ON s.msisdn = i.sender
            WHERE i.status = 'rejected' AND i.reason = ANY(%(reasons)s)
              AND i.received_at >= %(since)s AND i.received_at <= %(now)s
        ),
        bursts AS (
            SELECT meter_id, sender, count(*) AS n, max(received_at) AS last_at
            FROM fails WHERE meter_id IS NOT NULL
            GROUP BY meter_id, sender HAVING count(*) >= %(burst)s
        ),
        per_reason AS (
            SELECT meter_id, sender, json_object_agg(reason, n) AS reasons
            FROM (SELECT meter_id, sender, reason, count(*) AS n FROM fails
                  GROUP BY meter_id, sender, reason) x
            GROUP BY meter_id, sender
        ),
        per_hour AS (
            SELECT meter_id, sender, json_agg(json_build_array(h, n) ORDER BY h) AS series
            FROM (SELECT meter_id, sender, date_trunc('hour', received_at) AS h, count(*) AS n
                  FROM fails GROUP BY meter_id, sender, h) x
            GROUP BY meter_id, sender
        )
        SELECT b.meter_id, b.sender, b.n, b.last_at, r.reasons, h.series
        FROM bursts b
        JOIN per_reason r ON r.meter_id = b.meter_id AND r.sender = b.sender
        JOIN per_hour h ON h.meter_id = b.meter_id AND h.sender = b.sender
        JOIN devices_meter m ON m.id = b.meter_id AND m.status <> 'decommissioned'
        ORDER BY b.meter_id, b.n DESC
        """,
        {
            "reasons": list(cfg["reasons"]),
            "since": now - timedelta(hours=cfg["window_hours"]),
            "now": now,
            "burst": cfg["burst"],
        },
    )
    findings: dict[int, Finding] = {}
    for meter_id, sender, n, last_at, reasons, series in rows:
        if meter_id in findings:  # the SIM moved: keep the larger burst
            continue
        series = _loads(series)
        findings[meter_id] = Finding(
            meter_id=meter_id,
            cause=Cause.AUTH_FAILURES,
            severity=Severity.HIGH if n >= 4 * cfg["burst"] else Severity.MEDIUM,
            summary=f"{n} rejected messages from {sender} in {cfg['window_hours']} h",
            since=last_at,
            evidence={
                "sender": sender,
                "rejected": n,
                "reasons": _loads(reasons),
                "chart": {
                    "labels": [h for h, _ in series],
                    "datasets": [
                        {
                            "label": "Rejected messages",
                            "data": [c for _, c in series],
                            "type": "bar",
                        }
                    ],
                },
            },
        )
    return list(findings.values())


def _event_rows(cursor, *, kinds: list[str], since: datetime, min_abs_arg: int = 0) -> list[tuple]:
    return _rows(
        cursor,
        """
        SELECT e.meter_id, count(*), max(e.received_at), max(abs(e.arg)),
               json_agg(json_build_array(e.kind, e.occurred_at, e.arg) ORDER BY e.occurred_at)
        FROM devices_meterevent e
        JOIN devices_meter m ON m.id = e.meter_id AND m.status <> 'decommissioned'
        WHERE e.kind = ANY(%(kinds)s) AND e.received_at >= %(since)s
          AND abs(e.arg) >= %(min_abs_arg)s
        GROUP BY e.meter_id
        """,
        {"kinds": kinds, "since": since, "min_abs_arg": min_abs_arg},
    )


def _events_chart(events: list[list]) -> dict[str, Any]:
    """Events per day and kind (the events, not readings: a handful per meter)."""
    counts = Counter((occurred[:10], kind) for kind, occurred, _ in events)
    days = sorted({day for day, _ in counts})
    kinds = sorted({kind for _, kind in counts})
    return {
        "labels": days,
        "datasets": [
            {"label": kind, "data": [counts.get((day, kind), 0) for day in days], "type": "bar"}
            for kind in kinds
        ],
    }


def tamper(cursor, *, now: datetime) -> list[Finding]:
    """Tamper switch, service-console actions and store-integrity failures reported by meters."""
    cfg = config("tamper")
    rows = _event_rows(
        cursor, kinds=list(cfg["kinds"]), since=now - timedelta(days=cfg["lookback_days"])
    )
    findings = []
    for meter_id, count, latest, _, events in rows:
        events = _loads(events)
        kinds = sorted({kind for kind, _, _ in events})
        high = set(kinds) & set(cfg["high_kinds"])
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.TAMPER,
                severity=Severity.HIGH if high else Severity.MEDIUM,
                summary=f"{count} meter event(s): {', '.join(kinds)}",
                since=latest,
                evidence={
                    "events": [
                        {"kind": k, "occurred_at": at, "arg": arg} for k, at, arg in events[-50:]
                    ],
                    "chart": _events_chart(events),
                },
            )
        )
    return findings


def clock_step(cursor, *, now: datetime) -> list[Finding]:
    """Clock corrections larger than the threshold (the meter reports every step it makes)."""
    cfg = config("clock_step")
    rows = _event_rows(
        cursor,
        kinds=["clock_step"],
        since=now - timedelta(days=cfg["lookback_days"]),
        min_abs_arg=cfg["min_seconds"],
    )
    findings = []
    for meter_id, count, latest, largest, events in rows:
        events = _loads(events)
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.CLOCK_STEP,
                severity=Severity.HIGH if largest >= cfg["high_seconds"] else Severity.MEDIUM,
                summary=f"{count} clock step(s), largest {largest} s",
                since=latest,
                evidence={
                    "steps": [{"occurred_at": at, "seconds": arg} for _, at, arg in events[-50:]],
                    "largest_seconds": largest,
                    "thresholds": {"min_seconds": cfg["min_seconds"]},
                    "chart": {
                        "labels": [at for _, at, _ in events],
                        "datasets": [
                            {"label": "Clock step (s)", "data": [a for _, _, a in events]}
                        ],
                    },
                },
            )
        )
    return findings


@dataclass(frozen=True)
class Detector:
    name: str
    run: Callable[..., list[Finding]]
    uses_daily: bool = False


DETECTORS: tuple[Detector, ...] = (
    Detector("consumption_drop", consumption_drop, uses_daily=True),
    Detector("load_shape", load_shape, uses_daily=True),
    Detector("peer_comparison", peer_comparison, uses_daily=True),
    Detector("zero_use", zero_use, uses_daily=True),
    Detector("silent", silent),
    Detector("backwards", backwards),
    Detector("auth_failures", auth_failures),
    Detector("tamper", tamper),
    Detector("clock_step", clock_step),
)
DETECTOR_NAMES = tuple(d.name for d in DETECTORS)
