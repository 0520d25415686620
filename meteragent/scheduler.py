"""When the agent does what: hourly readings, two sends a day, energy reads in between.

Pure functions of the wall clock, so they are tested without waiting. The send times are
two minutes-of-day (UTC) twelve hours apart, shifted by a per-meter jitter derived from the
meter number with HMAC-SHA256: deterministic (a meter keeps its slot across restarts, which
keeps its traffic on a fixed schedule, S6) yet spread uniformly over the fleet, so the
gateway never sees the whole fleet at once. The server can move the slots with SET_SCHEDULE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac

HOUR = 3600
DAY = 86400
MINUTES_PER_DAY = 1440
_JITTER_KEY = b"meteragent schedule jitter v1"


def jitter_fraction(meter_number: str) -> float:
    """A per-meter number in [0, 1), uniform over meters, stable for one meter."""
    h = hmac.HMAC(_JITTER_KEY, hashes.SHA256())
    h.update(meter_number.encode("ascii"))
    return int.from_bytes(h.finalize()[:8], "big") / 2**64


@dataclass(frozen=True)
class SendSchedule:
    """Two send times a day: minutes-of-day (UTC) ``first`` and ``second`` plus a per-meter
    delay in ``[0, jitter]`` minutes. The default spreads meters over the whole 12 hours."""

    first: int = 0
    second: int = 720
    jitter: int = 719

    def minutes(self, meter_number: str) -> tuple[int, int]:
        delay = math.floor(jitter_fraction(meter_number) * (self.jitter + 1))
        return (
            (self.first + delay) % MINUTES_PER_DAY,
            (self.second + delay) % MINUTES_PER_DAY,
        )

    def to_text(self) -> str:
        return f"{self.first},{self.second},{self.jitter}"

    @classmethod
    def from_text(cls, text: str) -> SendSchedule:
        first, second, jitter = (int(v) for v in text.split(","))
        for v in (first, second, jitter):
            if not 0 <= v < MINUTES_PER_DAY:
                raise ValueError("schedule minutes must be in 0..1439")
        return cls(first, second, jitter)


def next_send(now: float, minutes: tuple[int, ...]) -> float:
    """The first send instant strictly after ``now`` (unix seconds)."""
    day = math.floor(now / DAY) * DAY
    candidates = [day + d * DAY + m * 60 for d in (0, 1) for m in minutes]
    return float(min(t for t in candidates if t > now))


def next_every(now: float, period: float, phase: float = 0.0) -> float:
    """The next multiple of ``period`` (offset by ``phase``) strictly after ``now``: used for
    the demo's shortened send interval."""
    return (math.floor((now - phase) / period) + 1) * period + phase


def next_hour(now: float) -> float:
    """The next top of a UTC hour strictly after ``now``."""
    return float((math.floor(now / HOUR) + 1) * HOUR)


def hour_index(now: float) -> int:
    """The UTC hour ``now`` lies in (unix hours)."""
    return math.floor(now / HOUR)
