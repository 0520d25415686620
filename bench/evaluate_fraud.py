"""Detection quality of the consumption detectors on realistic households: per attack the
detection rate and days to detect within 30 days of its start, false positives on normal
households per 30 days, and how often each innocent look-alike is flagged.

    .venv/bin/python bench/evaluate_fraud.py            # thresholds from training, test report
    .venv/bin/python bench/evaluate_fraud.py --per-scenario 8 --keep

Households are the committed richardsonpy profiles (meteragent/sim/households.json.gz): the
even seeds are the training set, on which the detectors' thresholds are chosen; the odd seeds
are the test set the figures are reported on. Per split:

* the normal fleet, every household unchanged over its whole profile, judged over consecutive
  30-day windows from the first day a meter can be judged (FIRST_JUDGED) to the profile's end;
* `--per-scenario` meters per scenario (households drawn by a seeded generator), each changed
  from day ATTACK_DAY, judged over the 30 days after it.

The real detectors (fraud.detectors, PostgreSQL) run with open thresholds as of every
SCAN_EVERY days of each window and every meter's statistics are recorded. The peer comparison
judges a meter against the fleet around it, so its peers are the normal fleet plus a few
(PEER_CHUNK) changed meters at a time, as in a real fleet where theft is rare — never the
other copies of the same household made for the other scenarios. Scratch database
`evaluate_fraud`, dropped at the end.
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
# The first day whose scan has a whole baseline and monitoring window behind it (63 days).
FIRST_JUDGED = 63
# At most this share of normal training windows may be flagged, per detector.
TRAIN_FP = 0.003
# Changed meters among the normal fleet at a time when the peer comparison is scored.
PEER_CHUNK = 8
METER_NUMBERS = iter(range(10**6))
HIGH = 3  # fraud.models.Severity.HIGH (imported after Django is set up)
# The peer comparison's least drop against the peers (fraud.conf, not tuned here).
PEER_MIN_DROP = 0.2
DETECTOR_KEYS = (("drop", "cusum_h"), ("shape", "shape_threshold"), ("peer", "peer_threshold"))


def split(seed: int) -> str:
    return "train" if seed % 2 == 0 else "test"


def scan_days(start: int) -> list[int]:
    return [start + k for k in range(SCAN_EVERY, WINDOW + 1, SCAN_EVERY)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-scenario", type=int, default=40, help="meters per scenario/split")
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


STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"{time.perf_counter() - STARTED:6.0f} s  {message}", file=sys.stderr, flush=True)


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
    """Write and judge the split's normal fleet over its whole profile, then add
    `per_scenario` meters of each scenario (households drawn by a seeded generator) and judge
    them over the 30 days after the change. Every meter's statistics at every scan."""
    from django.db import connection, transaction

    from devices.models import Meter, MeterStatus, Premises

    def new_meter() -> Meter:
        n = next(METER_NUMBERS)
        premises = Premises.objects.create(reference=f"EV{n:08d}", address=f"{n} Eval Road")
        return Meter.objects.create(
            number=f"EVAL{n:020d}", status=MeterStatus.ACTIVE, premises=premises
        )

    with connection.cursor() as cursor:  # the other split's readings
        cursor.execute("TRUNCATE readings_reading CASCADE")
    start = homes[0].start
    results: dict[str, list] = defaultdict(list)
    with transaction.atomic():
        normal = {}
        for home in homes:
            meter = new_meter()
            normal[meter.pk] = home.seed
            write(meter.pk, list(home.hourly_wh), start)
    days = {home.seed: home.days for home in homes}
    for window in range(FIRST_JUDGED, max(days.values()) - WINDOW + 1, WINDOW):
        trials: dict[int, list] = defaultdict(list)
        for day in scan_days(window):
            scores = score(start, day, changed=[])
            for meter_id, seed in normal.items():
                if days[seed] >= window + WINDOW:  # the home's profile covers the window
                    trials[meter_id].append((day - window, scores.get(meter_id, {})))
        results["normal"].extend(trials.values())
    say(f"{len(normal)} normal meters judged over {len(results['normal'])} windows")

    meters: dict[int, str] = {}  # changed meter id -> scenario
    until = ATTACK_DAY + WINDOW + 1
    with transaction.atomic():
        for name, (make, moved, declared) in scenarios(homes).items():
            rng = random.Random(f"{name}:{homes[0].seed}")
            for home in rng.sample(homes, min(per_scenario, len(homes))):
                series = make(home)(list(home.hourly_wh), ATTACK_DAY, random.Random(home.seed))
                meter = new_meter()
                meters[meter.pk] = name
                write(meter.pk, series[: 24 * until], start)
                record_context(meter, start, moved=moved, declared=declared)
    say(f"{len(meters)} changed meters written")
    trials = defaultdict(list)
    for day in scan_days(ATTACK_DAY):
        scores = score(start, day, changed=list(meters))
        for meter_id in meters:
            trials[meter_id].append((day - ATTACK_DAY, scores.get(meter_id, {})))
    for meter_id, trial in trials.items():
        results[meters[meter_id]].append(trial)
    say("scans after the change done")
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


def score(start, day: int, *, changed: list[int]) -> dict[int, dict]:
    """Every meter's statistics as of 06:00 of profile day `day`: the real detectors with
    thresholds open, so each returns every meter it can judge. The peer comparison sees the
    meters of `changed` PEER_CHUNK at a time among the others."""
    from django.conf import settings
    from django.db import connection, transaction

    from fraud import detectors

    now = datetime(start.year, start.month, start.day, 6, tzinfo=UTC) + timedelta(days=day)
    original = getattr(settings, "FRAUD_DETECTORS", {})
    settings.FRAUD_DETECTORS = {
        **original,
        "consumption_drop": {**original.get("consumption_drop", {}), "cusum_h": 0.0},
        "load_shape": {**original.get("load_shape", {}), "threshold": float("-inf")},
        "peer_comparison": {
            **original.get("peer_comparison", {}),
            "threshold": float("-inf"),
            "min_drop": -1e9,
        },
    }
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
            shuffled = random.Random(day).sample(changed, len(changed))
            chunks = [shuffled[i : i + PEER_CHUNK] for i in range(0, len(changed), PEER_CHUNK)]
            for chunk in chunks or [[]]:
                for meter_id, found in peer_scores(cursor, now, set(changed) - set(chunk)):
                    if chunk and meter_id not in chunk:
                        continue  # the normal fleet is scored without changed meters
                    scores[meter_id].update(found)
    finally:
        settings.FRAUD_DETECTORS = original
    return scores


def peer_scores(cursor, now: datetime, hidden: set[int]) -> list[tuple[int, dict]]:
    """The peer comparison's statistics with the meters of `hidden` out of the fleet: the
    scan's daily tables set aside (a savepoint brings them back) for copies without them."""
    from django.db import transaction

    from fraud import detectors

    found = []
    with transaction.atomic():
        for table in (detectors.DAILY_TABLE, detectors.BASELINE_TABLE) if hidden else ():
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_all")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {table} AS SELECT * FROM {table}_all "
                "WHERE NOT meter_id = ANY(%s)",
                [sorted(hidden)],
            )
        for finding in detectors.peer_comparison(cursor, now=now):
            evidence = finding.evidence
            found.append(
                (
                    finding.meter_id,
                    {
                        "peer": evidence["statistic"],
                        "peer_drop": 1 - (1 + evidence["change"]) / (1 + evidence["peer_change"]),
                        "peer_severity": finding.severity,
                    },
                )
            )
        transaction.set_rollback(True)
    return found


def flags(scores: dict, thresholds: dict) -> dict[str, bool]:
    """Which detectors flag a meter with these statistics at the chosen thresholds."""
    return {
        "drop": scores.get("drop", float("-inf")) >= thresholds["cusum_h"],
        "shape": scores.get("shape", float("-inf")) >= thresholds["shape_threshold"],
        "peer": scores.get("peer", float("-inf")) >= thresholds["peer_threshold"]
        and scores.get("peer_drop", 0) >= PEER_MIN_DROP,
        "zero": "zero" in scores,
    }


def flagged(scores: dict, thresholds: dict) -> bool:
    return any(flags(scores, thresholds).values())


def choose_thresholds(train: dict) -> dict:
    """Per detector, the smallest threshold keeping its flagged share of normal training
    windows at or under TRAIN_FP, and of the training holidays and move-ins at or under 5 %."""

    def window_max(trials, key):
        def value(s):
            if key == "peer" and s.get("peer_drop", 0) < PEER_MIN_DROP:
                return float("-inf")
            return s.get(key, float("-inf"))

        return [max((value(s) for _, s in t), default=float("-inf")) for t in trials]

    chosen = {}
    for key, name in DETECTOR_KEYS:
        values = sorted(window_max(train["normal"], key))
        allowed = int(TRAIN_FP * len(values))
        threshold = values[len(values) - 1 - allowed] if values else 0.0
        for lookalike in ("holiday", "new_occupants"):
            peaks = sorted(window_max(train[lookalike], key))
            allowed = int(0.05 * len(peaks))
            if peaks:
                threshold = max(threshold, peaks[len(peaks) - 1 - allowed])
        chosen[name] = round(max(threshold, 0.0) + 0.05, 2)
    return chosen


def report(results: dict, thresholds: dict) -> dict:
    out = {}
    for name, trials in results.items():
        detected, delays, high = 0, [], 0
        by_detector: dict[str, int] = defaultdict(int)
        for trial in trials:
            days = [day for day, scores in trial if flagged(scores, thresholds)]
            if days:
                detected += 1
                delays.append(min(days))
            for key in ("drop", "shape", "peer", "zero"):
                if any(flags(scores, thresholds)[key] for _, scores in trial):
                    by_detector[key] += 1
            if any(
                (scores.get("drop_severity") == HIGH and flags(scores, thresholds)["drop"])
                or (scores.get("peer_severity") == HIGH and flags(scores, thresholds)["peer"])
                for _, scores in trial
            ):
                high += 1
        entry = {
            "meters" if name != "normal" else "windows": len(trials),
            "flagged": round(detected / len(trials), 3) if trials else None,
            "detected": detected,
            "by_detector": dict(by_detector),
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
        "| scenario | train flagged | test flagged | test n | median days | by detector (test) |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in result["test"].items():
        train = result["train"].get(name, {})
        lines.append(
            f"| {name} | {train.get('flagged', 0):.1%} | {entry['flagged']:.1%} "
            f"| {entry['detected']}/{entry.get('meters', entry.get('windows'))} "
            f"| {entry.get('median_days_to_detect', '-')} | {entry['by_detector']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
