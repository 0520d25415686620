"""Readings for the portal benchmarks, written set-based: meters with two years of hourly data
(with a few gaps), among many meters with a recent month, so that the table and its partitions
are not theirs alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

HOURS = 2 * 365 * 24  # 17,520


def now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def fill_readings(meter_ids: list[int], *, others_days: int) -> None:
    """Two years of hours for `meter_ids`; `others_days` of hours for every other meter."""
    from django.db import connection

    end = now_hour()
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO readings_reading (meter_id, hour, wh, source, received_at)
            SELECT m, h, 5000000 + (extract(epoch FROM h - %(start)s) / 3600)::bigint * 420,
                   1, h + interval '6 hours'
              FROM unnest(%(meters)s::bigint[]) AS m,
                   generate_series(%(start)s, %(end)s, interval '1 hour') AS h
             WHERE extract(doy FROM h)::int %% 97 <> 0 OR extract(hour FROM h)::int > 5
            """,
            {"meters": meter_ids, "start": end - timedelta(hours=HOURS - 1), "end": end},
        )
        cursor.execute(
            """
            INSERT INTO readings_reading (meter_id, hour, wh, source, received_at)
            SELECT m.id, h, 1000 * m.id + (extract(epoch FROM h - %(start)s) / 3600)::bigint * 300,
                   1, h + interval '6 hours'
              FROM devices_meter m,
                   generate_series(%(start)s, %(end)s, interval '1 hour') AS h
             WHERE m.id <> ALL(%(meters)s::bigint[])
            """,
            {"meters": meter_ids, "start": end - timedelta(days=others_days), "end": end},
        )
        cursor.execute("ANALYZE readings_reading")
        cursor.execute(
            "SELECT count(*) FROM readings_reading WHERE meter_id = ANY(%s)", [meter_ids]
        )
        (own_rows,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM readings_reading")
        (all_rows,) = cursor.fetchone()
    print(
        f"filled {all_rows:,} readings ({own_rows:,} for the {len(meter_ids)} meters under test) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
