"""The detectors: set-based SQL over readings, inbound messages and meter events.

Each detector is one or two SQL statements that return only the meters it flags, with the
evidence already aggregated (JSON) by the database; Python never loops over readings. The two
consumption detectors share one temporary table of daily consumption per meter, built once per
scan with a plain GROUP BY (no sort, no window) over the readings of the look-back period.

PostgreSQL only (percentile_cont, FILTER, json_agg); docs/fraud.md explains each detector and
its thresholds (settings.FRAUD_DETECTORS).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings

from .models import Cause, Severity

DAILY_TABLE = "fraud_daily"


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
    return settings.FRAUD_DETECTORS[name]


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
    return max(
        drop["baseline_weeks"] * 7 + drop["sustained_days"],
        zero["history_days"] + zero["days"],
    )


def prepare_daily(cursor, *, now: datetime) -> None:
    """Daily consumption per meter and UTC day of the look-back period, into a temporary table
    dropped at the end of the transaction.

    A day's consumption is (last - first cumulative reading of that day) scaled to 24 hours by
    the span actually covered; days with fewer than FRAUD_MIN_HOURS_PER_DAY readings are left
    out, so a gap never looks like a drop (the silence detector handles gaps).
    """
    today = now.date()
    start = _day_start(today - timedelta(days=daily_days_needed()), now)
    cursor.execute(f"DROP TABLE IF EXISTS {DAILY_TABLE}")
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE {DAILY_TABLE} ON COMMIT DROP AS
        SELECT meter_id,
               (hour AT TIME ZONE 'UTC')::date AS day,
               ((max(wh) - min(wh)) * 24.0
                   / (extract(epoch FROM max(hour) - min(hour)) / 3600.0))::float8 AS wh,
               count(*) AS hours
        FROM readings_reading
        WHERE hour >= %(start)s AND hour < %(end)s
        GROUP BY meter_id, day
        HAVING count(*) >= %(min_hours)s AND max(hour) > min(hour)
        """,  # noqa: S608 (identifiers are constants; values are parameters)
        {
            "start": start,
            "end": _day_start(today, now),
            "min_hours": settings.FRAUD_MIN_HOURS_PER_DAY,
        },
    )
    cursor.execute(f"CREATE INDEX ON {DAILY_TABLE} (meter_id, day)")
    cursor.execute(f"ANALYZE {DAILY_TABLE}")


def _daily_series(cursor, meter_ids: list[int]) -> dict[int, list[list]]:
    rows = _rows(
        cursor,
        f"""
        SELECT meter_id, json_agg(json_build_array(day, round(wh)) ORDER BY day)
        FROM {DAILY_TABLE} WHERE meter_id = ANY(%(ids)s) GROUP BY meter_id
        """,  # noqa: S608
        {"ids": meter_ids},
    )
    return {meter_id: _loads(series) for meter_id, series in rows}


def _daily_chart(series: list[list], extra: dict[str, float] | None = None) -> dict[str, Any]:
    labels = [day for day, _ in series]
    datasets = [{"label": "Daily use (Wh)", "data": [wh for _, wh in series], "type": "bar"}]
    if extra:
        datasets.append(
            {"label": "Baseline median (Wh)", "data": [extra.get(day) for day in labels]}
        )
    return {"labels": labels, "datasets": datasets}


def consumption_drop(cursor, *, now: datetime) -> list[Finding]:
    """A sustained drop against the same weekdays of the meter's own previous weeks."""
    cfg = config("consumption_drop")
    today = now.date()
    window_start = today - timedelta(days=cfg["sustained_days"])
    params = {
        "today": today,
        "window_start": window_start,
        "baseline_start": window_start - timedelta(weeks=cfg["baseline_weeks"]),
        "sustained": cfg["sustained_days"],
        "min_weeks": cfg["min_baseline_weeks"],
        "k": cfg["mad_k"],
        "min_drop": cfg["min_drop"],
        "min_baseline": cfg["min_baseline_wh"],
    }
    rows = _rows(
        cursor,
        f"""
        WITH recent AS (
            SELECT meter_id, day, wh FROM {DAILY_TABLE}
            WHERE day >= %(window_start)s AND day < %(today)s
        ),
        pairs AS (
            SELECT r.meter_id, r.day, r.wh, b.wh AS bwh
            FROM recent r
            JOIN {DAILY_TABLE} b ON b.meter_id = r.meter_id
                AND b.day >= %(baseline_start)s AND b.day < %(window_start)s
                AND (r.day - b.day) %% 7 = 0
        ),
        stats AS (
            SELECT meter_id, day, wh, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY bwh) AS median
            FROM pairs GROUP BY meter_id, day, wh
        ),
        mads AS (
            SELECT s.meter_id, s.day, s.wh, s.n, s.median,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(p.bwh - s.median)) AS mad
            FROM stats s JOIN pairs p ON p.meter_id = s.meter_id AND p.day = s.day
            GROUP BY s.meter_id, s.day, s.wh, s.n, s.median
        ),
        judged AS (
            SELECT *, (n >= %(min_weeks)s AND median >= %(min_baseline)s
                       AND wh < median - %(k)s * 1.4826 * mad
                       AND wh < (1 - %(min_drop)s) * median) AS low
            FROM mads
        )
        SELECT j.meter_id, sum(j.wh), sum(j.median),
               json_agg(json_build_array(j.day, round(j.wh), round(j.median), round(j.mad))
                        ORDER BY j.day)
        FROM judged j JOIN devices_meter m ON m.id = j.meter_id AND m.status = 'active'
        GROUP BY j.meter_id
        HAVING count(*) = %(sustained)s AND bool_and(j.low)
        """,  # noqa: S608
        params,
    )
    series = _daily_series(cursor, [row[0] for row in rows])
    findings = []
    for meter_id, used, expected, days in rows:
        days = _loads(days)
        drop = 1 - used / expected if expected else 1.0
        medians = {day: median for day, _, median, _ in days}
        findings.append(
            Finding(
                meter_id=meter_id,
                cause=Cause.CONSUMPTION_DROP,
                severity=Severity.HIGH if drop >= cfg["high_drop"] else Severity.MEDIUM,
                summary=f"Use down {drop:.0%} for {cfg['sustained_days']} days "
                f"against the same weekdays of the previous {cfg['baseline_weeks']} weeks",
                since=_day_start(window_start, now),
                evidence={
                    "drop": round(drop, 3),
                    "window": [window_start.isoformat(), (today - timedelta(days=1)).isoformat()],
                    "days": [
                        {"day": d, "wh": wh, "median": med, "mad": mad} for d, wh, med, mad in days
                    ],
                    "thresholds": {
                        key: cfg[key] for key in ("mad_k", "min_drop", "baseline_weeks")
                    },
                    "chart": _daily_chart(series.get(meter_id, []), medians),
                },
            )
        )
    return findings


def zero_use(cursor, *, now: datetime) -> list[Finding]:
    """No consumption for several full days at an occupied premises (see docs/fraud.md)."""
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
            SELECT meter_id, max(wh) AS max_wh FROM {DAILY_TABLE}
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
        SELECT r.meter_id, h.avg_wh, r.max_wh
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
            severity=Severity.HIGH,
            summary=f"No consumption for {cfg['days']} full days; {avg_wh:.0f} Wh/day before",
            since=_day_start(window_start, now),
            evidence={
                "history_avg_wh_per_day": round(avg_wh),
                "max_wh_per_day_in_window": round(max_wh),
                "window": [window_start.isoformat(), (today - timedelta(days=1)).isoformat()],
                "chart": _daily_chart(series.get(meter_id, [])),
            },
        )
        for meter_id, avg_wh, max_wh in rows
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
    Detector("zero_use", zero_use, uses_daily=True),
    Detector("silent", silent),
    Detector("backwards", backwards),
    Detector("auth_failures", auth_failures),
    Detector("tamper", tamper),
    Detector("clock_step", clock_step),
)
DETECTOR_NAMES = tuple(d.name for d in DETECTORS)
