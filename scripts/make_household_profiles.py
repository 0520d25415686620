"""Generate the committed household load profiles (meteragent/sim/households.json.gz) with
richardsonpy, the RWTH-EBC port of the CREST (Richardson et al.) occupancy-based stochastic
model of domestic electricity demand. Development only: richardsonpy, numpy and matplotlib are
in requirements-dev.txt, never in a runtime requirement.

    .venv/bin/python scripts/make_household_profiles.py               # 96 households, 2 workers
    .venv/bin/python scripts/make_household_profiles.py --households 4 --out /tmp/h.json.gz

The committed file was made in two steps, its first 18 weeks first (the days the fraud tests
are written against) and then the rest of the year (about 1.5 hours on two busy cores):

    .venv/bin/python scripts/make_household_profiles.py --days 126 --out first.json.gz
    .venv/bin/python scripts/make_household_profiles.py --extend first.json.gz

Household i is seeded with i (Python's and numpy's generators, which richardsonpy uses): the
same commands write the same file. Each household has `days` days (52 weeks) of hourly Wh
from Monday START (UTC days; the model's own solar irradiance for those days of the year
drives lighting), and `vacant` — the same dwelling and appliances with nobody home for
VACANT_DAYS days — for the holiday look-alike.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "meteragent" / "sim" / "households.json.gz"
START = date(2026, 1, 5)  # a Monday; richardsonpy's day 0 is then day-of-year 4
DAYS = 364  # 52 weeks: a year of seasons, repeated by whole weeks beyond it
VACANT_DAYS = 21
# UK household sizes (ONS, rounded): 1 to 5 occupants.
SIZES = (1, 2, 3, 4, 5)
SIZE_WEIGHTS = (30, 35, 15, 13, 7)


def _simulate(seed: int, occupancy_days: int, days: int, first_day: int, empty: bool) -> list[int]:
    import numpy as np
    import richardsonpy.classes.electric_load as eload
    import richardsonpy.classes.occupancy as occ
    import richardsonpy.functions.load_radiation as loadrad
    from richardsonpy.classes import appliance as app_model
    from richardsonpy.classes import lighting as light_model
    from richardsonpy.classes import stochastic_el_load_wrapper as wrapper

    rng = random.Random(seed)  # noqa: S311 (a simulation, seeded on purpose)
    occupants = rng.choices(SIZES, SIZE_WEIGHTS)[0]
    is_sfh = rng.random() < 0.6
    light_config = rng.randrange(100)
    random.seed(seed)
    np.random.seed(seed)
    occupancy = occ.Occupancy(number_occupants=occupants, initial_day=1, nb_days=occupancy_days)
    profile = np.array(occupancy.occupancy)
    if empty:
        profile[:] = 0
    load = eload.ElectricLoad(
        occ_profile=profile,
        total_nb_occ=occupants,
        q_direct=None,
        q_diffuse=None,
        is_sfh=is_sfh,
        prev_heat_dev=True,
        calc_profile=False,
    )
    # The appliance set is drawn from the seed alone, so the empty dwelling has the same fridge.
    random.seed(seed + 1_000_003)
    np.random.seed(seed + 1_000_003)
    inputs = Path(eload.__file__).resolve().parent.parent / "inputs"
    demand = load.standard_consumption["SFH" if is_sfh else "MFH"][occupants]
    appliances = app_model.Appliances(
        str(inputs / "Appliances.csv"),
        annual_consumption=0.91 * demand,
        randomize_appliances=True,
        prev_heat_dev=True,
    )
    lights = light_model.load_lighting_profile(
        filename=str(inputs / "LightBulbs.csv"), index=light_config
    )
    sim = wrapper.ElectricityProfile(appliances, lights)
    q_direct, q_diffuse = loadrad.get_rad_from_try_path()
    irradiance = np.array(q_direct) + np.array(q_diffuse)  # hourly, kW/m2
    minutes = np.arange(1440)
    year_days = len(irradiance) // 24
    hourly: list[int] = []
    for i in range(first_day, first_day + days):
        doy = (START.timetuple().tm_yday - 1 + i) % year_days
        irr = np.interp(minutes, 60 * np.arange(24), irradiance[24 * doy : 24 * doy + 24])
        watts, _, _ = sim.power_sim(
            irradiation=irr,
            weekend=(i % 7) >= 5,
            day=doy,
            occupancy=profile[144 * i : 144 * (i + 1)],
        )
        hourly.extend(round(float(w)) for w in np.asarray(watts).reshape(24, 60).mean(axis=1))
    return hourly


def extend(existing: dict, days: int = DAYS) -> dict:
    """`existing` with its hourly use continued to `days` days: the same dwelling, appliances
    and lights, the occupancy chain run on from the start. The days already there stay as
    they are."""
    have = len(existing["hourly_wh"]) // 24
    if have >= days:
        return existing
    more = _simulate(existing["seed"], days, days - have, have, empty=False)
    return {**existing, "hourly_wh": existing["hourly_wh"] + more}


def household(seed: int, days: int = DAYS) -> dict:
    rng = random.Random(seed)  # noqa: S311 (a simulation, seeded on purpose)
    occupants = rng.choices(SIZES, SIZE_WEIGHTS)[0]
    is_sfh = rng.random() < 0.6
    return {
        "seed": seed,
        "occupants": occupants,
        "dwelling": "house" if is_sfh else "flat",
        "hourly_wh": _simulate(seed, days, days, 0, empty=False),
        "vacant_hourly_wh": _simulate(seed, VACANT_DAYS, VACANT_DAYS, 0, empty=True),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=96)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--first", type=int, default=0, help="first seed (to generate in parts)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--extend",
        type=Path,
        help="continue the households of this file to --days days (its days kept as they are)",
    )
    args = parser.parse_args()
    seeds = range(args.first, args.households)
    if args.extend:
        with gzip.open(args.extend, "rb") as f:
            kept = {h["seed"]: h for h in json.loads(f.read())["households"]}
        work, jobs = extend, [kept[seed] for seed in seeds]
    else:
        work, jobs = household, list(seeds)
    with ProcessPoolExecutor(args.workers) as pool:
        households = []
        for h in pool.map(work, jobs, [args.days] * len(jobs)):
            households.append(h)
            print(
                f"household {h['seed']}: {h['occupants']} occupants, {h['dwelling']}, "
                f"{sum(h['hourly_wh']) / args.days / 1000:.1f} kWh/day",
                file=sys.stderr,
            )
    body = {
        "model": "richardsonpy 0.2.3 (CREST occupancy-based domestic electricity demand)",
        "command": "scripts/make_household_profiles.py"
        + (f" --households {args.households}" if args.households != 96 else "")
        + (f" --days {args.days}" if args.days != DAYS else "")
        + (f" --extend {args.extend.name}" if args.extend else ""),
        "start": START.isoformat(),
        "days": args.days,
        "vacant_days": VACANT_DAYS,
        "households": households,
    }
    with gzip.GzipFile(args.out, "wb", mtime=0) as f:
        f.write(json.dumps(body, separators=(",", ":")).encode())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
