"""Realistic household load from committed profiles: hourly Wh of households generated with
richardsonpy (the CREST occupancy-based stochastic model of domestic electricity demand) by
``scripts/make_household_profiles.py``. Reading them needs only the standard library, so the
demo fleet and the server's tests use them without richardsonpy or numpy.

Each household has ``days`` days of hourly use from ``start`` (a Monday, UTC days) and
``vacant_hourly_wh``: the same dwelling and appliances with nobody home (fridge and freezer
cycling, standby), for holidays.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from meteragent.energy import Bypass, EnergyResult

PROFILES = Path(__file__).with_name("households.json.gz")
HOUR = 3600.0
YEAR_DAYS = 364


@dataclass(frozen=True)
class Household:
    seed: int
    occupants: int
    dwelling: str
    start: date
    hourly_wh: tuple[int, ...]
    vacant_hourly_wh: tuple[int, ...]

    @property
    def days(self) -> int:
        return len(self.hourly_wh) // 24

    def wh_at(self, t: float) -> int:
        """Use in the UTC hour containing unix time ``t``, the profile repeated by whole weeks
        (so weekdays stay weekdays) beyond its span."""
        origin = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        hour = math.floor((t - origin.timestamp()) / HOUR)
        span = (self.days // 7) * 7 * 24
        return self.hourly_wh[hour % span]


@cache
def households() -> tuple[Household, ...]:
    with gzip.open(PROFILES, "rb") as f:
        body = json.loads(f.read())
    start = date.fromisoformat(body["start"])
    return tuple(
        Household(
            seed=h["seed"],
            occupants=h["occupants"],
            dwelling=h["dwelling"],
            start=start,
            hourly_wh=tuple(h["hourly_wh"]),
            vacant_hourly_wh=tuple(h["vacant_hourly_wh"]),
        )
        for h in body["households"]
    )


class HouseholdEnergySource:
    """An energy source for the demo fleet: one committed household's load, chosen by seed."""

    def __init__(
        self, *, seed: int, start: float, start_wh: int = 0, bypass: Bypass | None = None
    ) -> None:
        # Households that cover a whole year give the demo's two-year history its seasons.
        fleet = [h for h in households() if h.days >= YEAR_DAYS] or households()
        self.household = fleet[seed % len(fleet)]
        self.bypass = bypass
        self._t = start
        self._wh = float(start_wh)

    def _metered(self, t: float) -> float:
        """The share of the load that passes through the meter at `t`."""
        if self.bypass and t >= self.bypass.since:
            return 1.0 - self.bypass.fraction
        return 1.0

    def read(self, now: float) -> EnergyResult:
        t = self._t
        while t < now:
            edge = min(now, (math.floor(t / HOUR) + 1) * HOUR)
            self._wh += self.household.wh_at(t) * self._metered(t) * (edge - t) / HOUR
            t = edge
        self._t = max(self._t, now)
        return EnergyResult(int(self._wh))
