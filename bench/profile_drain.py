"""Where a drain's time goes: the sms workers' processing of stored report frames, in one
process, with the time spent in each SQL statement (waiting for PostgreSQL) and in Python.

    .venv/bin/python bench/profile_drain.py                       # 1000 meters x 4 frames
    .venv/bin/python bench/profile_drain.py --meters 2000 --frames 6 --cprofile 25
    .venv/bin/python bench/profile_drain.py --phases            # CPU per message by phase

The frames are stored raw as the webhook stores them, then drained with
`smsgateway.drain.drain` (batches of SMS_BATCH_SIZE). Prints messages/s, readings rows/s, the
share of the wall time spent inside database calls (per statement, by its first words), and
with --cprofile the N functions with the most own time (or the most time under them, with
--sort cumulative), and with --phases this process's CPU per message inside each phase of a
batch (inclusive; without a profiler's overhead). Needs PostgreSQL on localhost (a
scratch database `bench_drain` is recreated). To see the same from outside, run py-spy on a
worker of bench/bench_ingest.py: `py-spy record -o drain.svg --pid <worker pid>`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import ingest_environment, recreate_database  # noqa: E402

DB_NAME = "bench_drain"


class StatementTimes:
    """Sums the time of each kind of statement inside psycopg's execute (adapting the
    parameters, the round trip, PostgreSQL's work), for Django's cursors and the raw ones."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def install(self) -> None:
        import psycopg

        original = psycopg.Cursor.execute
        times = self

        def execute(cursor, query, params=None, **kwargs):
            start = time.perf_counter()
            try:
                return original(cursor, query, params, **kwargs)
            finally:
                kind = times.kind(query if isinstance(query, str) else str(query))
                times.seconds[kind] += time.perf_counter() - start
                times.calls[kind] += 1

        psycopg.Cursor.execute = execute

    @staticmethod
    def kind(sql: str) -> str:
        words = re.sub(r"\s+", " ", str(sql)).strip()
        match = re.match(
            r"(WITH \w+|INSERT INTO \S+|UPDATE \S+|DELETE FROM \S+|SELECT .*? FROM \S+|\w+)",
            words,
        )
        return (match.group(1) if match else words)[:90]


class PhaseTimes:
    """Sums this process's CPU time inside each phase of a drain, by wrapping the function
    that does it where its caller looks it up."""

    # (module, attribute): the functions a batch calls, outermost first
    PHASES = (
        ("smsgateway.drain", "process_batch"),
        ("smsgateway.batch", "_process"),
        ("smsgateway.batch", "_open"),
        ("smsgateway.batch", "store_many_readings"),
        ("readings.usage_cache", "settle_meters"),
        ("smsgateway.rules", "accepted_ranges"),
        ("smsgateway.alerts", "meters_heard"),
        ("smsgateway.rules", "queue_acks"),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def install(self) -> None:
        import functools
        import importlib

        for module_name, attribute in self.PHASES:
            module = importlib.import_module(module_name)
            original = getattr(module, attribute)
            name = f"{module_name}.{attribute}"
            self.seconds[name] = 0.0

            def timed(*args, _original=original, _name=name, **kwargs):
                start = time.process_time()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds[_name] += time.process_time() - start

            setattr(module, attribute, functools.wraps(original)(timed))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=4, help="report frames per meter")
    parser.add_argument("--cprofile", type=int, default=0, help="show the N top functions")
    parser.add_argument("--sort", default="tottime", help="cProfile order (tottime, cumulative)")
    parser.add_argument("--callees", metavar="REGEX", help="with --cprofile: what these call")
    parser.add_argument("--phases", action="store_true", help="CPU per message by phase")
    args = parser.parse_args()

    import os

    os.environ.update(ingest_environment(DB_NAME, meters=args.meters, outbox="/dev/null"))
    recreate_database(DB_NAME)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from bench.bench_ingest import UTILITY_MSISDN, frames_for, provision, readings_rows
    from smsgateway.adapters import InboundSms
    from smsgateway.drain import drain
    from smsgateway.rawstore import store_raw_many

    print(f"provisioning {args.meters} meters…", file=sys.stderr)
    fleet = provision(args.meters)
    work = frames_for(fleet, args.frames)
    store_raw_many(
        [
            (
                InboundSms("kannel", f"p-{i}", m, UTILITY_MSISDN, f, b"", 1, "b", None),
                timezone.now(),
            )
            for i, (m, f) in enumerate(work)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    times = StatementTimes()
    phases = PhaseTimes() if args.phases else None
    if phases:
        phases.install()
    profile = cProfile.Profile() if args.cprofile else None
    from bench import cpu

    cpu_before = cpu.snapshot(DB_NAME)
    start, cpu_start = time.perf_counter(), time.process_time()
    times.install()
    if profile:
        profile.enable()
    drained = drain(limit=len(work))
    if profile:
        profile.disable()
    elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu_start
    backends = cpu.used_since(cpu_before, cpu.snapshot(DB_NAME)).get(
        "postgresql (this database)", 0.0
    )
    rows = readings_rows()
    in_db = sum(times.seconds.values())
    print(
        f"{drained.processed} messages in {elapsed:.2f} s: {drained.processed / elapsed:.0f} "
        f"messages/s, {rows / elapsed:.0f} readings rows/s ({rows} rows); "
        f"{1e6 * cpu_used / drained.processed:.0f} µs of this process's CPU per message, "
        f"{1e6 * backends / drained.processed:.0f} µs of its PostgreSQL backend's"
    )
    print(f"inside psycopg execute: {in_db:.2f} s ({100 * in_db / elapsed:.0f} % of the wall time)")
    for kind, seconds in sorted(times.seconds.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {seconds:7.3f} s {times.calls[kind]:6d} x  {kind}")
    if phases:
        print("this process's CPU per message, by phase (inclusive):")
        for name, seconds in phases.seconds.items():
            print(f"  {1e6 * seconds / drained.processed:7.1f} µs  {name}")
    if profile:
        stats = pstats.Stats(profile).sort_stats(args.sort)
        stats.print_stats(args.cprofile)
        if args.callees:
            stats.print_callees(args.callees)
    return 0


if __name__ == "__main__":
    sys.exit(main())
