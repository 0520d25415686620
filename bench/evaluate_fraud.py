"""Detection quality of the consumption detectors on realistic households: per attack the
detection rate and days to detect within 30 days of its start, false positives on normal
households per 30 days, and how often each innocent look-alike is flagged.

    .venv/bin/python bench/evaluate_fraud.py            # thresholds from training, test report
    .venv/bin/python bench/evaluate_fraud.py --per-scenario 8 --keep

Households are the committed richardsonpy profiles (meteragent/sim/households.json.gz): the
even seeds are the training set, on which the CUSUM decision interval and the load-shape
threshold are chosen; the odd seeds are the test set the figures are reported on. For each
split one fleet holds every household unchanged (the normal windows: days 61-91 and 91-121)
and `--per-scenario` meters per scenario changed from day ATTACK_DAY (households drawn by a
seeded generator); the real detectors (fraud.detectors, PostgreSQL) run with open thresholds
as of every SCAN_EVERY days up to 30 days later and every meter's statistics are recorded.
Scratch database `evaluate_fraud`, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import django_environment, drop_database, recreate_database  # noqa: E402

DB_NAME = "evaluate_fraud"
ATTACK_DAY = 91  # profile day the attack or look-alike starts (13 weeks of history before it)
SCAN_EVERY = 3
WINDOW = 30
# Normal households are judged over two 30-day windows each: before and after ATTACK_DAY.
NORMAL_WINDOWS = (ATTACK_DAY - WINDOW, ATTACK_DAY)
# At most this share of normal training windows may be flagged, per detector.
TRAIN_FP = 0.01
METER_NUMBERS = iter(range(10**6))
HIGH = 3  # fraud.models.Severity.HIGH (imported after Django is set up)


def split(seed: int) -> str:
    return "train" if seed % 2 == 0 else "test"


def scan_days(start: int) -> list[int]:
    return [start + k for k in range(SCAN_EVERY, WINDOW + 1, SCAN_EVERY)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-scenario", type=int, default=16, help="meters per scenario/split")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--stats", type=Path, help="also write every statistic recorded here")
    parser.add_argument(
        "--from-stats", type=Path, help="report from statistics written by --stats, no scans"
    )
    args = parser.parse_args()
    if args.from_stats:
        result = summarise(json.loads(args.from_stats.read_text()))
        print(json.dumps(result, indent=2))
        print(markdown(result), file=sys.stderr)
        return 0
    recreate_database(DB_NAME)
    os.environ.update(django_environment(DB_NAME, SMS_INGEST_ENABLED="false"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        stats = evaluate(args.per_scenario)
        if args.stats:
            args.stats.write_text(json.dumps(stats))
        result = summarise(stats)
        result["seconds"] = round(time.perf_counter() - started)
        result["command"] = shlex.join(
            [".venv/bin/python", "bench/evaluate_fraud.py", *sys.argv[1:]]
        )
        print(json.dumps(result, indent=2))
        print(markdown(result), file=sys.stderr)
    finally:
        if not args.keep:
            connection.close()
            drop_database(DB_NAME)
    return 0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate(per_scenario: int) -> dict:
    from meteragent.sim.households import households

    fleet = households()
    by_split = {name: [h for h in fleet if split(h.seed) == name] for name in ("train", "test")}
    stats: dict[str, dict] = {"households": {n: len(homes) for n, homes in by_split.items()}}
    for name, homes in by_split.items():
        stats[name] = collect(homes, per_scenario)
    return stats


def summarise(stats: dict) -> dict:
    thresholds = choose_thresholds(stats["train"])
    return {
        "households": stats["households"],
        "thresholds": thresholds,
        "train": report(stats["train"], thresholds),
        "test": report(stats["test"], thresholds),
    }


def scenarios(homes) -> dict:
    """{name: (attack(household) -> series function, recorded move-in?, declared absence?)}"""
    from fraud import attacks

    table = {
        name: (lambda home, a=attack: a, False, False) for name, attack in attacks.ATTACKS.items()
    }
    for name, attack in attacks.LOOKALIKES.items():
        table[name] = (lambda home, a=attack: a, False, False)
    table["holiday"] = (attacks.holiday, False, False)
    table["holiday_declared"] = (attacks.holiday, False, True)
    others = {home.seed: homes[(i + 1) % len(homes)] for i, home in enumerate(homes)}
    table["new_occupants"] = (lambda home: attacks.new_occupants(others[home.seed]), True, False)
    return table


LOOKALIKE_NAMES = (
    "holiday",
    "holiday_declared",
    "new_occupants",
    "seasonal_change",
    "rooftop_solar",
    "working_from_home",
)


def collect(homes, per_scenario: int) -> dict:
    """Write the split's normal fleet and `per_scenario` meters of each scenario (households
    drawn by a seeded generator), then record every meter's detector statistics at every
    scan. The detectors judge each meter against its own history only, so one fleet holds
    every scenario."""
    from django.db import transaction

    from devices.models import Meter, MeterStatus, Premises

    def new_meter() -> Meter:
        n = next(METER_NUMBERS)
        premises = Premises.objects.create(reference=f"EV{n:08d}", address=f"{n} Eval Road")
        return Meter.objects.create(
            number=f"EVAL{n:020d}", status=MeterStatus.ACTIVE, premises=premises
        )

    start = homes[0].start
    meters: dict[int, tuple[str, int]] = {}  # meter id -> (scenario, household seed)
    with transaction.atomic():
        for home in homes:
            meter = new_meter()
            meters[meter.pk] = ("normal", home.seed)
            write(meter.pk, list(home.hourly_wh), start)
        for name, (make, moved, declared) in scenarios(homes).items():
            rng = random.Random(f"{name}:{homes[0].seed}")
            for home in rng.sample(homes, min(per_scenario, len(homes))):
                series = make(home)(list(home.hourly_wh), ATTACK_DAY, random.Random(home.seed))
                meter = new_meter()
                meters[meter.pk] = (name, home.seed)
                write(meter.pk, series, start)
                record_context(meter, start, moved=moved, declared=declared)
    say(f"{len(meters)} meters written")
    trials: dict[tuple[str, int, int], list] = {}
    for window in (*NORMAL_WINDOWS[:1], ATTACK_DAY):
        for day in scan_days(window):
            scores = score(start, day)
            for meter_id, (name, _) in meters.items():
                if window != ATTACK_DAY and name != "normal":
                    continue
                trials.setdefault((name, meter_id, window), []).append(
                    (day - window, scores.get(meter_id, {}))
                )
        say(f"scans from day {window} done")
    results: dict[str, list] = defaultdict(list)
    for (name, _, _), trial in trials.items():
        results[name].append(trial)
    return dict(results)


def write(meter_id: int, series: list[float], start) -> None:
    from fraud.simulation import store_series

    store_series(meter_id, series, start)


def record_context(meter, start, *, moved: bool, declared: bool) -> None:
    """The records an honest household leaves: the new occupant's claim after the old one's,
    or an absence declared in the portal."""
    from django.contrib.auth import get_user_model

    from accounts.models import MeterOccupancy
    from fraud.models import Absence

    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    if moved:
        users = get_user_model().objects
        old = users.create_user(email=f"old{meter.pk}@example.org", password=None)
        new = users.create_user(email=f"new{meter.pk}@example.org", password=None)
        move = begin + timedelta(days=ATTACK_DAY)
        MeterOccupancy.objects.create(user=old, meter=meter, start=begin, end=move)
        MeterOccupancy.objects.create(user=new, meter=meter, start=move)
    if declared:
        user = get_user_model().objects.create_user(email=f"away{meter.pk}@example.org")
        Absence.objects.create(
            meter=meter,
            declared_by=user,
            first_day=(begin + timedelta(days=ATTACK_DAY)).date(),
            last_day=(begin + timedelta(days=ATTACK_DAY + 13)).date(),
            declared_at=begin + timedelta(days=ATTACK_DAY - 1),
        )


def score(start, day: int) -> dict[int, dict]:
    """Every meter's statistics as of 06:00 of profile day `day`: the real detectors with
    thresholds open, so each returns every meter it can judge."""
    from django.conf import settings
    from django.db import connection, transaction

    from fraud import detectors

    now = datetime(start.year, start.month, start.day, 6, tzinfo=UTC) + timedelta(days=day)
    original = settings.FRAUD_DETECTORS
    open_thresholds = {name: dict(cfg) for name, cfg in original.items()}
    open_thresholds["consumption_drop"]["cusum_h"] = 0.0
    open_thresholds["load_shape"]["threshold"] = float("-inf")
    settings.FRAUD_DETECTORS = open_thresholds
    scores: dict[int, dict] = defaultdict(dict)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            detectors.prepare_daily(cursor, now=now)
            for finding in detectors.consumption_drop(cursor, now=now):
                scores[finding.meter_id]["drop"] = finding.evidence["statistic"]
                scores[finding.meter_id]["drop_severity"] = finding.severity
            for finding in detectors.load_shape(cursor, now=now):
                scores[finding.meter_id]["shape"] = finding.evidence["statistic"]
            for finding in detectors.zero_use(cursor, now=now):
                scores[finding.meter_id]["zero"] = 1.0
    finally:
        settings.FRAUD_DETECTORS = original
    return scores


def flagged(scores: dict, thresholds: dict) -> bool:
    return (
        scores.get("drop", 0) >= thresholds["cusum_h"]
        or scores.get("shape", float("-inf")) >= thresholds["shape_threshold"]
        or "zero" in scores
    )


def choose_thresholds(train: dict) -> dict:
    """The smallest thresholds keeping each detector's flagged share of normal training windows
    at or under TRAIN_FP, and of the training holidays and move-ins under half the target."""

    def window_max(trials, key):
        return [
            max((s.get(key, float("-inf")) for _, s in t), default=float("-inf")) for t in trials
        ]

    chosen = {}
    for key, name in (("drop", "cusum_h"), ("shape", "shape_threshold")):
        values = sorted(window_max(train["normal"], key))
        allowed = int(TRAIN_FP * len(values))
        threshold = values[len(values) - 1 - allowed] if values else 0.0
        for lookalike in ("holiday", "new_occupants"):
            peaks = sorted(window_max(train[lookalike], key))
            allowed = int(0.05 * len(peaks))
            if peaks:
                threshold = max(threshold, peaks[len(peaks) - 1 - allowed])
        chosen[name] = round(threshold + 0.05, 2)
    return chosen


def report(results: dict, thresholds: dict) -> dict:
    out = {}
    for name, trials in results.items():
        detected, delays, high = 0, [], 0
        for trial in trials:
            days = [day for day, scores in trial if flagged(scores, thresholds)]
            if days:
                detected += 1
                delays.append(min(days))
            if any(
                scores.get("drop_severity") == HIGH
                and scores.get("drop", 0) >= thresholds["cusum_h"]
                for _, scores in trial
            ):
                high += 1
        entry = {
            "meters" if name != "normal" else "windows": len(trials),
            "flagged": round(detected / len(trials), 3) if trials else None,
        }
        if delays:
            entry["median_days_to_detect"] = statistics.median(delays)
        if name in LOOKALIKE_NAMES:
            entry["high"] = high
        out[name] = entry
    return out


def markdown(result: dict) -> str:
    lines = [
        f"thresholds (training set): {result['thresholds']}",
        "| scenario | train flagged | test flagged | test median days to detect |",
        "|---|---|---|---|",
    ]
    for name, entry in result["test"].items():
        train = result["train"].get(name, {})
        lines.append(
            f"| {name} | {train.get('flagged', 0):.0%} | {entry['flagged']:.0%} "
            f"| {entry.get('median_days_to_detect', '-')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
