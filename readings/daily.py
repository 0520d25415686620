"""A day of one meter's readings summed up, as the retention policy keeps it (DailyReading), and
how hourly readings that arrive after the day was summed are added to it. The retention job
(readings/retention.py) and the portal's reads (readings/selectors.py) both use this, so the
portal shows before the job runs what the job will store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce


def hour_bits(start: datetime, end: datetime) -> int:
    """The hours [start, end) of one UTC day as bits (bit i: the hour from i:00 UTC)."""
    return (1 << end.astimezone(UTC).hour) - (1 << start.astimezone(UTC).hour)


@dataclass(frozen=True)
class DaySummary:
    first_hour: datetime
    first_wh: int
    last_hour: datetime
    last_wh: int
    readings: int
    usage_wh: int
    hours_with_usage: int

    @classmethod
    def of_reading(cls, hour: datetime, wh: int) -> DaySummary:
        return cls(hour, wh, hour, wh, 1, 0, 0)

    @classmethod
    def of(cls, daily) -> DaySummary:
        """From a DailyReading."""
        return cls(
            daily.first_hour,
            daily.first_wh,
            daily.last_hour,
            daily.last_wh,
            daily.readings,
            daily.usage_wh,
            daily.hours_with_usage,
        )

    def then(self, later: DaySummary) -> DaySummary:
        """This summary followed by a later one of the same day: the span between them counts
        as the portal counts it (its rise, over its hours; nothing when the register fell)."""
        rise = later.first_wh - self.last_wh
        span = hour_bits(self.last_hour, later.first_hour) if rise >= 0 else 0
        return DaySummary(
            self.first_hour,
            self.first_wh,
            later.last_hour,
            later.last_wh,
            self.readings + later.readings,
            self.usage_wh + later.usage_wh + max(rise, 0),
            self.hours_with_usage | later.hours_with_usage | span,
        )

    def covers(self, hour: datetime) -> bool:
        return self.first_hour <= hour <= self.last_hour

    def hour_count(self) -> int:
        return self.hours_with_usage.bit_count()


def fold_late(
    day: DaySummary, late: list[tuple[datetime, int]]
) -> tuple[DaySummary, list[tuple[datetime, int]]]:
    """Add readings of the same UTC day that arrived after it was summed. A reading before the
    day's first or after its last adds exactly what it would have added on time. One within
    the day's span changes nothing: the day's usage is already measured by the readings on
    both sides of it (the register's rise between them), and which hours it fell in is all it
    could refine. Returns the new summary and the readings within the span."""
    ordered = sorted(late)
    before = [DaySummary.of_reading(*r) for r in ordered if r[0] < day.first_hour]
    after = [DaySummary.of_reading(*r) for r in ordered if r[0] > day.last_hour]
    within = [r for r in ordered if day.covers(r[0])]
    return reduce(DaySummary.then, [*before, day, *after]), within
