"""The committed household profiles and the demo fleet's energy source built on them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from meteragent.sim.households import HouseholdEnergySource, households

HOUR = 3600


def test_profiles_are_realistic_households_readable_without_numpy_or_django():
    code = (
        "import sys; from meteragent.sim.households import households; h = households(); "
        "assert len(h) == 96 and not {'numpy', 'django', 'richardsonpy'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    fleet = households()
    assert {h.occupants for h in fleet} == {1, 2, 3, 4, 5}
    for home in fleet:
        assert home.days == 364 and len(home.vacant_hourly_wh) == 21 * 24
        daily = [sum(home.hourly_wh[24 * d : 24 * d + 24]) for d in range(home.days)]
        # Lived-in homes vary from day to day; the empty home uses less than the lived-in one.
        assert max(daily) > 1.5 * min(daily)
        assert sum(home.vacant_hourly_wh) / 21 < sum(daily) / home.days


def test_the_energy_source_integrates_the_household_hour_by_hour():
    start = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday, inside the profiles
    source = HouseholdEnergySource(seed=7, start=start, start_wh=500)
    home = source.household
    readings = [source.read(start + h * HOUR).wh for h in range(49)]
    assert readings == sorted(readings) and readings[0] == 500
    assert readings[-1] - 500 == sum(home.wh_at(start + h * HOUR) for h in range(48))
    # Half an hour of the next hour counts half its use.
    half = source.read(start + 48.5 * HOUR).wh - readings[-1]
    assert abs(half - home.wh_at(start + 48 * HOUR) / 2) <= 1
