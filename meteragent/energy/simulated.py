"""A simulated household for demos and tests: seeded, deterministic, realistic in shape.

Mean power per hour = base load + morning and evening peaks (later and broader at weekends,
plus a midday bump) x a seasonal factor (winter higher) x seeded noise, scaled so that a year
comes to ``annual_kwh``. Each hour's noise depends only on (seed, hour), so the cumulative
reading at a given time does not depend on how often it was read.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from .base import EnergyResult

HOUR = 3600.0
NOISE_SIGMA = 0.25


@dataclass(frozen=True)
class Bypass:
    """Energy theft to simulate: from ``since`` (unix time) on, this fraction of the household's
    load is wired around the meter and never measured."""

    since: float
    fraction: float


def _bump(h: float, centre: float, width: float) -> float:
    d = min(abs(h - centre), 24 - abs(h - centre))  # wrap around midnight
    return math.exp(-0.5 * (d / width) ** 2)


def shape_w(t: float, utc_offset_h: float = 0.0) -> float:
    """Un-normalised mean household power (W) in the hour containing ``t`` (no noise)."""
    local = datetime.fromtimestamp(t + utc_offset_h * HOUR, UTC)
    h = local.hour + 0.5
    weekend = local.weekday() >= 5
    p = 150.0  # fridge, router, standby
    if weekend:
        p += 450 * _bump(h, 9.5, 1.5) + 350 * _bump(h, 13.0, 2.5) + 900 * _bump(h, 19.0, 2.0)
    else:
        p += 600 * _bump(h, 7.25, 1.0) + 120 * _bump(h, 13.0, 2.0) + 950 * _bump(h, 19.0, 1.8)
    doy = local.timetuple().tm_yday
    seasonal = 1.0 + 0.3 * math.cos(2 * math.pi * (doy - 15) / 365.25)  # peak mid-January
    return p * seasonal


class SimulatedEnergySource:
    def __init__(
        self,
        *,
        seed: int,
        start: float,
        start_wh: int = 0,
        annual_kwh: float = 3500.0,
        utc_offset_h: float = 0.0,
        bypass: Bypass | None = None,
    ) -> None:
        self.seed = seed
        self.utc_offset_h = utc_offset_h
        self.bypass = bypass
        self._t = start
        self._wh = float(start_wh)
        # Normalise over a reference year so the yearly total matches annual_kwh.
        ref = datetime(2023, 1, 1, tzinfo=UTC).timestamp()
        year_wh = sum(shape_w(ref + i * HOUR, utc_offset_h) for i in range(8760))
        self._scale = annual_kwh * 1000 / year_wh

    def power_w(self, t: float) -> float:
        """Mean power in the hour containing ``t``, noise included."""
        hour = math.floor(t / HOUR)
        # A simulation, not security: a seeded PRNG is what we want. String seeds are hashed
        # with SHA-512, so they are stable across runs and PYTHONHASHSEED.
        rng = random.Random(f"{self.seed}:{hour}")  # noqa: S311
        noise = rng.lognormvariate(-(NOISE_SIGMA**2) / 2, NOISE_SIGMA)  # mean 1
        metered = 1.0
        if self.bypass and t >= self.bypass.since:
            metered -= self.bypass.fraction
        return shape_w(t, self.utc_offset_h) * self._scale * noise * metered

    def read(self, now: float) -> EnergyResult:
        t = self._t
        while t < now:
            edge = min(now, (math.floor(t / HOUR) + 1) * HOUR)
            self._wh += self.power_w(t) * (edge - t) / HOUR
            t = edge
        self._t = max(self._t, now)
        return EnergyResult(int(self._wh))
