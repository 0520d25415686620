"""Fraud scan: the full detector run over 10,000 meters x 90 days of hourly readings on
PostgreSQL (21.6 million rows), through the same code path as `manage.py run_detectors`.

    .venv/bin/python bench/bench_fraud.py                 # 10,000 meters
    .venv/bin/python bench/bench_fraud.py --meters 1000   # a quicker run
    .venv/bin/python bench/bench_fraud.py --keep          # leave the database for inspection

Recreates a scratch database `bench_fraud` on the local PostgreSQL and drops it at the end. The
load is realistic: meter i follows committed household i mod 96 (meteragent/sim/households,
richardsonpy profiles), written into the database once as a cumulative profile table and
expanded with generate_series; one meter in a hundred carries each anomaly (a 60 % bypass for
the last 21 days, zero use for 4 days, a backwards step, 72 hours of silence, a burst of
rejected messages, tamper events, a clock step). The bypassed meters are found twice: against
their own baseline and against similar households (peer comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import django_environment, drop_database, recreate_database  # noqa: E402

DB_NAME = "bench_fraud"
DAYS = 90
ANOMALIES = {0: "consumption_drop", 1: "zero_use", 2: "backwards", 3: "silent"}
ANOMALIES.update({4: "auth_failures", 5: "tamper", 6: "clock_step"})


def generate(cursor, meters: int, now: datetime, progress) -> None:
    start = now - timedelta(days=DAYS)
    cursor.execute(
        """
        INSERT INTO devices_premises (reference, address, postcode)
        SELECT 'BENCH' || lpad(g::text, 8, '0'), g || ' Bench Road', 'BN1 1AA'
        FROM generate_series(1, %(n)s) g
        """,
        {"n": meters},
    )
    cursor.execute(
        """
        INSERT INTO devices_meter (number, status, manufacturer, model, batch, registered_at,
            status_changed_at, last_message_at, rejected_while_suspended, premises_id,
            software_version)
        SELECT 'BENCH' || lpad(g::text, 20, '0'), 'active', 'Acme', 'M1', 'B1',
               %(start)s, %(start)s,
               CASE WHEN g %% 100 = 3 THEN %(now)s - interval '72 hours'
                    ELSE %(now)s - interval '2 hours' END,
               0, p.id, '0.1.0'
        FROM generate_series(1, %(n)s) g
        JOIN devices_premises p ON p.reference = 'BENCH' || lpad(g::text, 8, '0')
        """,
        {"n": meters, "start": start, "now": now},
    )
    cursor.execute(
        """
        INSERT INTO devices_sim (msisdn, iccid, meter_id, created_at)
        SELECT '+4479' || lpad(m.id::text, 8, '0'), '8944' || lpad(m.id::text, 15, '0'),
               m.id, %(start)s
        FROM devices_meter m
        """,
        {"start": start},
    )
    from meteragent.sim.households import households

    fleet = households()
    cursor.execute("CREATE TEMPORARY TABLE bench_profile (household int, k int, cum bigint)")
    with cursor.cursor.copy("COPY bench_profile FROM STDIN") as copy:
        for i, home in enumerate(fleet):
            total = 0
            for k in range(DAYS * 24 + 1):
                copy.write_row((i, k, total))
                total += home.hourly_wh[k]
    cursor.execute("CREATE UNIQUE INDEX ON bench_profile (household, k)")
    cursor.execute("SELECT min(id), max(id) FROM devices_meter")
    low, high = cursor.fetchone()
    chunk = 500
    hours = DAYS * 24
    drop_from, zero_from, back_at = hours - 21 * 24, hours - 4 * 24 - 6, hours - 5
    for first in range(low, high + 1, chunk):
        # The anomalies bend the household's register in closed form (a bypass keeps 40 % of
        # the use after drop_from, the zero meter's register stops at zero_from), so one
        # INSERT … SELECT makes every row.
        cursor.execute(
            """
            INSERT INTO readings_reading (meter_id, hour, wh, source, received_at)
            SELECT m.id, %(start)s + g.k * interval '1 hour',
                   1000000
                   + CASE WHEN m.id %% 100 = 0 AND g.k > %(drop_from)s
                          THEN d.cum + 0.4 * (p.cum - d.cum) ELSE p.cum END
                   - CASE WHEN m.id %% 100 = 2 AND g.k = %(back_at)s THEN 5000 ELSE 0 END,
                   1, %(start)s + g.k * interval '1 hour'
            FROM devices_meter m
            CROSS JOIN generate_series(0, %(hours)s - 1) g(k)
            JOIN bench_profile p ON p.household = m.id %% %(households)s
                AND p.k = CASE WHEN m.id %% 100 = 1 THEN least(g.k, %(zero_from)s) ELSE g.k END
            JOIN bench_profile d ON d.household = m.id %% %(households)s AND d.k = %(drop_from)s
            WHERE m.id BETWEEN %(first)s AND %(last)s
            """,
            {
                "start": start,
                "hours": hours,
                "households": len(fleet),
                "first": first,
                "last": min(first + chunk - 1, high),
                "drop_from": drop_from,
                "zero_from": zero_from,
                "back_at": back_at,
            },
        )
        progress(f"readings: meters {first - low + chunk:>6} / {meters}")
    cursor.execute(
        """
        INSERT INTO smsgateway_inboundmessage (gateway, dedupe_key, sender, receiver, smsc,
            udh, payload, received_at, status, reason, detail)
        SELECT 'bench', s.msisdn || '-' || i, s.msisdn, '', '', '', '\\x00',
               %(now)s - i * interval '5 minutes', 'rejected',
               CASE WHEN i %% 2 = 0 THEN 'auth_failed' ELSE 'replay' END, ''
        FROM devices_sim s JOIN devices_meter m ON m.id = s.meter_id AND m.id %% 100 = 4
        CROSS JOIN generate_series(1, 6) i
        """,
        {"now": now},
    )
    cursor.execute(
        """
        INSERT INTO devices_meterevent (meter_id, kind, occurred_at, arg, received_at)
        SELECT id, CASE WHEN id %% 100 = 5 THEN 'tamper' ELSE 'clock_step' END,
               %(now)s - interval '5 hours', CASE WHEN id %% 100 = 5 THEN 1 ELSE 7200 END,
               %(now)s - interval '4 hours'
        FROM devices_meter WHERE id %% 100 IN (5, 6)
        """,
        {"now": now},
    )
    cursor.execute("ANALYZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    recreate_database(DB_NAME)
    os.environ.update(django_environment(DB_NAME, SMS_INGEST_ENABLED="false"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count

    from fraud.models import Case
    from fraud.services import run_scan

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        call_command("migrate", verbosity=0)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            generate(cursor, args.meters, now, say)
        generate_seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM readings_reading")
            rows = cursor.fetchone()[0]
        say(f"generated {rows} readings in {generate_seconds:.0f} s")
        scans = []
        for label in ("first scan (opens cases)", "repeat scan (refreshes them)"):
            started = time.perf_counter()
            report = run_scan(now=now, actor="bench", progress=say)
            total = time.perf_counter() - started
            scans.append(
                {
                    "scan": label,
                    "total_seconds": round(total, 2),
                    "daily_table_seconds": round(report.daily_seconds, 2),
                    "detectors": {
                        run.name: {
                            "detect_seconds": round(run.detect_seconds, 2),
                            "case_seconds": round(run.apply_seconds, 2),
                            "findings": run.findings,
                            "opened": run.opened,
                        }
                        for run in report.runs
                    },
                }
            )
        cases = dict(Case.objects.values_list("cause").annotate(n=Count("id")))
        expected = {name: args.meters // 100 for name in ANOMALIES.values()}
        print(
            json.dumps(
                {
                    "command": shlex.join(
                        [".venv/bin/python", "bench/bench_fraud.py", *sys.argv[1:]]
                    ),
                    "meters": args.meters,
                    "readings": rows,
                    "generate_seconds": round(generate_seconds, 1),
                    "scans": scans,
                    "cases_by_cause": cases,
                    "planted_per_cause": expected,
                },
                indent=2,
            )
        )
    finally:
        if not args.keep:
            connection.close()
            drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
