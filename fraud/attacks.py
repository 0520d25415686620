"""Theft attacks and their innocent look-alikes, as functions over an hourly series.

An hourly series is a list of Wh per hour starting at 00:00 UTC of its first day. Every
function returns a new series; `start` is the first day (index) the change applies to; `rng`
is a seeded `random.Random`, so a scenario is reproducible from its seed.

The attacks h1-h6 are the six models of Jokar, Arianpoo and Leung, "Electricity Theft
Detection in AMI Using Customers' Consumption Patterns" (IEEE Trans. Smart Grid 7(1), 2016);
the others are the partial, night-only and slowly growing bypasses of the field. The
look-alikes are what honest households do that resembles theft. Used by the fraud tests, the
fraud benchmark and the detection evaluation (bench/evaluate_fraud.py); pure Python.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from meteragent.sim.households import Household

Series = list[float]
Attack = Callable[[Sequence[float], int, random.Random], Series]


def _days(series: Sequence[float]) -> int:
    return len(series) // 24


def _per_hour(series: Sequence[float], start: int, factor: Callable[[int, int], float]) -> Series:
    """Multiply hour h of day d (d >= start) by factor(d, h)."""
    out = list(series)
    for d in range(start, _days(series)):
        for h in range(24):
            out[24 * d + h] = series[24 * d + h] * factor(d, h)
    return out


def _per_day(
    series: Sequence[float], start: int, day: Callable[[list[float], int], list[float]]
) -> Series:
    """Replace each day d >= start by day(its 24 values, d)."""
    out = list(series)
    for d in range(start, _days(series)):
        out[24 * d : 24 * d + 24] = day(list(series[24 * d : 24 * d + 24]), d)
    return out


def h1_constant_fraction(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """h1: every hour reported as alpha x the use, alpha ~ U(0.1, 0.8) for the household."""
    alpha = rng.uniform(0.1, 0.8)
    return _per_hour(series, start, lambda d, h: alpha)


def h2_zeroed_interval(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """h2: nothing recorded in the same interval of each day (4 to 20 hours, random start)."""
    length = rng.randint(4, 20)
    first = rng.randrange(24)
    off = {(first + i) % 24 for i in range(length)}
    return _per_hour(series, start, lambda d, h: 0.0 if h in off else 1.0)


def h3_random_fraction(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """h3: each hour reported as gamma_t x the use, gamma_t ~ U(0.1, 0.8) drawn every hour."""
    return _per_hour(series, start, lambda d, h: rng.uniform(0.1, 0.8))


def h4_fraction_of_mean(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """h4: each hour reported as gamma_t x the day's mean, gamma_t ~ U(0.1, 0.8)."""

    def day(values: list[float], d: int) -> list[float]:
        mean = sum(values) / 24
        return [mean * rng.uniform(0.1, 0.8) for _ in values]

    return _per_day(series, start, day)


def h5_flat_mean(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """h5: every hour reported as the day's mean (same daily total, shape flattened)."""
    return _per_day(series, start, lambda values, d: [sum(values) / 24] * 24)


def h6_reversed_day(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """h6: the day reported in reverse order (same daily total, evening load moved to night)."""
    return _per_day(series, start, lambda values, d: values[::-1])


def partial_bypass(fraction: float) -> Attack:
    """A bypass of `fraction` of the load (some circuits wired round the meter)."""

    def attack(series: Sequence[float], start: int, rng: random.Random) -> Series:
        return _per_hour(series, start, lambda d, h: 1 - fraction)

    attack.__name__ = f"bypass_{round(fraction * 100)}"
    return attack


def night_bypass(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """Everything above the base load bypassed from 22:00 to 07:00 (heater, EV charging)."""
    night = set(range(22, 24)) | set(range(7))
    base = min(series[: 24 * start] or series)

    def day(values: list[float], d: int) -> list[float]:
        return [min(v, base) if h in night else v for h, v in enumerate(values)]

    return _per_day(series, start, day)


def slow_drift(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """A bypass growing by about 2 % of the load a day, up to 60 % (a theft learning to hide)."""
    return _per_hour(series, start, lambda d, h: 1 - min(0.6, 0.02 * (d - start + 1)))


# --- Innocent look-alikes ---


def holiday(household: Household, days: int = 14) -> Attack:
    """Nobody home for `days` days: the same dwelling's own empty-house load."""

    def lookalike(series: Sequence[float], start: int, rng: random.Random) -> Series:
        out = list(series)
        away = household.vacant_hourly_wh
        for i in range(min(days, _days(series) - start, len(away) // 24)):
            out[24 * (start + i) : 24 * (start + i + 1)] = away[24 * i : 24 * i + 24]
        return out

    lookalike.__name__ = "holiday"
    return lookalike


def new_occupants(incoming: Household) -> Attack:
    """Another household moves in on day `start` (the move is recorded by the caller)."""

    def lookalike(series: Sequence[float], start: int, rng: random.Random) -> Series:
        return list(series[: 24 * start]) + list(incoming.hourly_wh[24 * start : len(series)])

    lookalike.__name__ = "new_occupants"
    return lookalike


def seasonal_change(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """Spring: use falls by 0.5 % a day (heating, lighting) to 75 % of what it was over seven
    weeks, shape kept."""
    return _per_hour(series, start, lambda d, h: max(0.75, 1 - 0.005 * (d - start + 1)))


def rooftop_solar(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """Panels installed: daytime use is met from the roof (2-4 kWp, winter sun, clouds)."""
    peak_w = rng.uniform(2000, 4000) * 0.35  # winter yield of a south-facing array at noon

    def day(values: list[float], d: int) -> list[float]:
        cloud = rng.uniform(0.2, 1.0)
        out = []
        for h, v in enumerate(values):
            sun = max(0.0, 1 - abs(h + 0.5 - 12) / 4.5)  # 07:30-16:30 UTC
            out.append(max(0.0, v - peak_w * cloud * sun))
        return out

    return _per_day(series, start, day)


def working_from_home(series: Sequence[float], start: int, rng: random.Random) -> Series:
    """Someone starts working at home: 100-300 W more from 08:00 to 17:00 on weekdays."""
    extra = rng.uniform(100, 300)

    def day(values: list[float], d: int) -> list[float]:
        if d % 7 >= 5:  # the series start on a Monday
            return values
        return [v + extra if 8 <= h < 17 else v for h, v in enumerate(values)]

    return _per_day(series, start, day)


ATTACKS: dict[str, Attack] = {
    "h1": h1_constant_fraction,
    "h2": h2_zeroed_interval,
    "h3": h3_random_fraction,
    "h4": h4_fraction_of_mean,
    "h5": h5_flat_mean,
    "h6": h6_reversed_day,
    "bypass_20": partial_bypass(0.2),
    "bypass_30": partial_bypass(0.3),
    "bypass_40": partial_bypass(0.4),
    "bypass_60": partial_bypass(0.6),
    "night_bypass": night_bypass,
    "slow_drift": slow_drift,
}
# Look-alikes that need only the series; holiday and new occupants need households.
LOOKALIKES: dict[str, Attack] = {
    "seasonal_change": seasonal_change,
    "rooftop_solar": rooftop_solar,
    "working_from_home": working_from_home,
}
