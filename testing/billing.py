"""Test helpers for billing: hourly readings written in bulk (the `make_tariff` and
`make_account` fixtures are in `testing.plugin`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from readings.models import Reading


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write_readings(meter, start: datetime, hours: int, *, wh0: int, per_hour: int, skip=()):
    """Cumulative reads at start, start+1h, ... (hours + 1 of them) rising by per_hour;
    hours whose datetime is in `skip` are left out (missing data). Returns the last register."""
    now = timezone.now()
    rows = []
    for i in range(hours + 1):
        hour = start + timedelta(hours=i)
        if hour not in skip:
            rows.append(
                Reading(meter=meter, hour=hour, wh=wh0 + i * per_hour, source=1, received_at=now)
            )
    Reading.objects.bulk_create(rows)
    return wh0 + hours * per_hour
