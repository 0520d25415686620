"""Households on the meter register: an hourly series (fraud.attacks) written as the hourly
cumulative readings a meter sends, for the fraud tests, the benchmark and the detection
evaluation. The register at the top of each hour is everything used before it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

from django.db import connection

from readings.models import Source


def register(
    series: Sequence[float], first_day: date, *, start_wh: int = 1_000_000
) -> Iterator[tuple[datetime, int]]:
    """(hour, cumulative Wh) from 00:00 of `first_day` to the midnight after the series."""
    hour = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    total = float(start_wh)
    for use in series:
        yield hour, int(total)
        total += max(0.0, use)
        hour += timedelta(hours=1)
    yield hour, int(total)


def store_series(
    meter_id: int,
    series: Sequence[float],
    first_day: date,
    *,
    start_wh: int = 1_000_000,
    until: datetime | None = None,
) -> int:
    """COPY the series' readings for one meter (those before `until`, if given) into
    readings_reading (PostgreSQL). Returns the number of rows."""
    rows = 0
    with connection.cursor() as cursor:
        copy_sql = "COPY readings_reading (meter_id, hour, wh, source, received_at) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for hour, wh in register(series, first_day, start_wh=start_wh):
                if until is not None and hour > until:
                    break
                copy.write_row((meter_id, hour, wh, Source.SMS, hour))
                rows += 1
    return rows
