"""Billing benchmark: a monthly billing run over 1,000 and 10,000 meters of hourly data, on
real Celery worker processes, beside the time PostgreSQL takes only to hand over the readings.

    .venv/bin/python bench/bench_billing.py                          # 1,000 and 10,000, 2 workers
    .venv/bin/python bench/bench_billing.py --sizes 10000 100000 --workers 1 2
    .venv/bin/python bench/bench_billing.py --workers 0                # in this process
    .venv/bin/python bench/bench_billing.py --layout hours             # worst-case heap layout
    .venv/bin/python bench/bench_billing.py --sizes 10000 --workers 0 --reference --repeat 2
    BENCH_BILLING_DB=bench_billing_100k .venv/bin/python bench/bench_billing.py \
        --sizes 100000 --workers 2 1 --keep                          # populated once, kept

Needs PostgreSQL and Redis on localhost (BENCH_REDIS_URL, default redis://127.0.0.1:6379/14; its
tasks go to a queue of the benchmark's own). A scratch database `bench_billing` is created,
migrated, filled set-based with generate_series (one account, premises, meter and flat tariff
each; January 2025 plus a day either side; about 1 % of hours missing, so some estimation runs),
billed, and dropped at the end. The readings are stored in the order ingest writes them
(`--layout reports`, the default: each meter's twelve hours of a report together, the fleet's
reports in sending order) or hour by hour across the fleet (`--layout hours`: every meter's hour
h before any hour h+1, so no two reads of a meter share a heap page). With N workers the run is
`billing.services.start_billing_run`: its chunks of BILLING_BATCH_SIZE accounts go to N `celery
worker --pool=solo` processes and the clock stops when the final tally marks the run completed.
With 0 it is `run_billing` in this process (the code path of `manage.py run_billing`). Before
each run the anchor is timed: the chunks' readings read once (`billing.consumption.READS_SQL`,
chunk after chunk, in this process), the part of the run no billing code can avoid. With
`--reference` and 0 workers, the in-process run is also timed with the hour-by-hour reference
consumption (`reference_window_usage`) in place of the fast path, side by side. Prints seconds
per run and the growth factor between sizes. `--keep` keeps the database and its meters for the
next run (populating 100,000 meters takes 12 minutes on the test machine).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import (  # noqa: E402
    database_exists,
    django_environment,
    drop_database,
    recreate_database,
)

DB_NAME = os.environ.get("BENCH_BILLING_DB", "bench_billing")
SLICE = 10_000  # meters whose readings are inserted (and sorted) in one statement
QUEUE = f"bench-billing-{uuid.uuid4().hex[:8]}"  # one per worker count: -1, -2, ...
ENVIRONMENT = django_environment(
    DB_NAME,
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    CELERY_TASK_ALWAYS_EAGER="false",
)


def setup_django() -> None:
    os.environ.update(ENVIRONMENT)
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=os.environ
    )
    import django

    django.setup()


def populate(first: int, last: int, layout: str) -> None:
    """Meters first..last-1: premises, customer, account, meter and a month of readings."""
    from datetime import date
    from decimal import Decimal

    from django.db import connection

    from accounts.models import User
    from billing.models import BillingAccount, Tariff, TariffVersion
    from devices.models import Meter, Premises

    tariff, created = Tariff.objects.get_or_create(code="FLAT", defaults={"name": "Flat"})
    if created:
        TariffVersion.objects.create(
            tariff=tariff,
            valid_from=date(2020, 1, 1),
            unit_price=Decimal("0.245000"),
            standing_charge_per_day=Decimal("0.500000"),
            tax_rate=Decimal("0.05"),
        )
    ids = range(first, last)
    premises = Premises.objects.bulk_create(Premises(reference=f"BP{i:07d}") for i in ids)
    users = User.objects.bulk_create(User(email=f"bench{i}@example.com", password="!") for i in ids)
    Meter.objects.bulk_create(
        Meter(number=f"BENCH{i:020d}", status="active", premises=p)
        for i, p in zip(ids, premises, strict=True)
    )
    BillingAccount.objects.bulk_create(
        BillingAccount(
            number=f"BA{i:07d}",
            customer=u,
            premises=p,
            tariff=tariff,
            opened_on=date(2020, 1, 1),
            cycle_day=1,
        )
        for i, u, p in zip(ids, users, premises, strict=True)
    )
    # Each report carries twelve hours of one meter; ingest stores them together.
    order = {"reports": "extract(epoch FROM h)::bigint / 43200, m.id, h", "hours": "h, m.id"}
    with connection.cursor() as cursor:
        for part in range(first, last, SLICE):
            # 250-650 Wh an hour per meter, cumulative; about 1 % of hours missing.
            cursor.execute(
                f"""
                INSERT INTO readings_reading (meter_id, hour, wh, source, received_at)
                SELECT m.id, h,
                       (extract(epoch FROM h - '2024-12-31'::timestamptz) / 3600)::bigint
                           * (250 + m.id %% 400),
                       1, now()
                FROM devices_meter m
                CROSS JOIN generate_series('2024-12-31 00:00+00'::timestamptz,
                                           '2025-02-02 00:00+00'::timestamptz, '1 hour') AS h
                WHERE m.number >= %s AND m.number < %s
                  AND (m.id * 7919 + extract(epoch FROM h)::bigint / 3600) %% 97 <> 0
                ORDER BY {order[layout]}
                """,
                [f"BENCH{part:020d}", f"BENCH{min(part + SLICE, last):020d}"],
            )
        cursor.execute("VACUUM ANALYZE")


def start_workers(count: int) -> list[subprocess.Popen]:
    """`count` solo-pool worker processes on the benchmark's queue for that many workers, once
    they answer a ping."""
    from utility.celery import app

    queue = f"{QUEUE}-{count}"
    names = [f"bench{i}@{queue}" for i in range(count)]
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "utility", "worker", "--pool=solo"),
                *("-Q", queue, "-n", name, "--loglevel=WARNING"),
                *("--without-gossip", "--without-mingle"),
            ],
            cwd=ROOT,
            env={**os.environ, **ENVIRONMENT},
        )
        for name in names
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answered = app.control.ping(destination=names, timeout=1) or []
        if len(answered) == count:
            return workers
    raise RuntimeError("the Celery workers did not start")


def read_only(chunk_size: int) -> float:
    """The anchor: seconds to read the period's readings of every chunk (READS_SQL), as the run
    reads them, without computing anything."""
    from datetime import date

    from django.db import connection, transaction

    from billing import consumption
    from billing.services import accounts_for_period, meter_windows

    start, end = date(2025, 1, 1), date(2025, 2, 1)
    accounts = list(accounts_for_period(start, end))
    started = time.perf_counter()
    for offset in range(0, len(accounts), chunk_size):
        windows = meter_windows(accounts[offset : offset + chunk_size], start, end)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(consumption.READS_SQL, consumption.query_parameters(windows))
            cursor.fetchall()
    return time.perf_counter() - started


def bill(workers: int, reference: bool = False) -> tuple[float, object]:
    """One run; `reference`: in this process, with the hour-by-hour reference consumption in
    place of the fast path (everything else the same), for a side-by-side ratio."""
    from datetime import UTC, date, datetime

    from django.db import connection

    from billing import consumption, services
    from billing.models import BillingRun, RunStatus
    from billing.selectors import run_progress
    from billing.services import run_billing, start_billing_run

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE billing_meterread, billing_invoiceline, billing_invoice, "
            "billing_billingchunk, billing_billingrun"
        )
    started = time.perf_counter()
    if not workers:
        fast = services.window_usage
        if reference:
            services.window_usage = consumption.reference_window_usage
        try:
            run = run_billing(date(2025, 1, 1), now=datetime(2025, 2, 3, tzinfo=UTC), by="bench")
        finally:
            services.window_usage = fast
        return time.perf_counter() - started, run
    run = start_billing_run(date(2025, 1, 1), by="bench", queue=f"{QUEUE}-{workers}")
    while run_progress(run.pk).status == RunStatus.RUNNING:
        time.sleep(0.05)
    return time.perf_counter() - started, BillingRun.objects.get(pk=run.pk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2], help="worker counts; 0: in this process"
    )
    parser.add_argument("--layout", choices=["reports", "hours"], default="reports")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and worker count")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="with --workers 0: also run with the hour-by-hour reference consumption",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the database (and its meters) for the next run instead of dropping it",
    )
    args = parser.parse_args()
    # Stopped with a signal, still stop the workers and drop the scratch database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not (args.keep and database_exists(DB_NAME)):
        recreate_database(DB_NAME)
    processes: list[subprocess.Popen] = []
    try:
        setup_django()
        from billing.conf import setting

        for count in args.workers:
            processes += start_workers(count) if count else []
        from devices.models import Meter

        results, have = [], Meter.objects.count()
        for size in sorted(args.sizes):
            started = time.perf_counter()
            if size > have:
                populate(have, size, args.layout)
                have = size
            generated = time.perf_counter() - started
            paths = [(w, False) for w in args.workers]
            if args.reference and 0 in args.workers:
                paths.append((0, True))
            for _ in range(args.repeat):
                for workers, reference in paths:
                    anchor = read_only(setting("BILLING_BATCH_SIZE"))
                    seconds, run = bill(workers, reference)
                    label = f"{workers} (reference)" if reference else str(workers)
                    print(
                        f"{size:>7} meters: data {generated:.1f} s, reads alone {anchor:.1f} s, "
                        f"run {seconds:.1f} s, {run.invoices_issued} invoices, "
                        f"{run.failed} failed, {size / seconds:.0f} accounts/s with "
                        f"{label} worker(s), load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    results.append((size, label, seconds, anchor, run.invoices_issued))
        print(
            "\n| meters | invoices | workers | run seconds | accounts/s | per worker "
            "| reads alone (s) | run / reads | growth |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size, workers, seconds, anchor, invoices in results:
            smaller = [r for r in results if r[1] == workers and r[0] < size]
            growth = (
                f"x{seconds / smaller[-1][2]:.1f} time for x{size / smaller[-1][0]:.0f} meters"
                if smaller
                else ""
            )
            print(
                f"| {size:,} | {invoices:,} | {workers} | {seconds:.1f} | {size / seconds:.0f} "
                f"| {size / seconds / max(int(workers.split()[0]), 1):.0f} | {anchor:.1f} "
                f"| {seconds / anchor:.1f} | {growth} |"
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
