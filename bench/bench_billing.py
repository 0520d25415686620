"""Billing benchmark: a monthly billing run over 1,000 and 10,000 meters of hourly data.

    .venv/bin/python bench/bench_billing.py                   # 1,000 then 10,000 meters
    .venv/bin/python bench/bench_billing.py --sizes 1000 5000

Needs PostgreSQL on localhost. A scratch database `bench_billing` is created, migrated, filled
set-based with generate_series (one account, premises, meter and flat tariff each; January 2025
plus a day either side; about 1 % of hours missing, so some estimation runs), billed with
`billing.services.run_billing` (the code path of `manage.py run_billing` and the beat task), and
dropped at the end. Prints seconds per run and the growth factor between sizes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import django_environment, drop_database, recreate_database  # noqa: E402

DB_NAME = "bench_billing"


def setup_django() -> None:
    os.environ.update(django_environment(DB_NAME))
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=os.environ
    )
    import django

    django.setup()


def populate(first: int, last: int) -> None:
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
    with connection.cursor() as cursor:
        # 250-650 Wh an hour per meter, cumulative; about 1 % of hours missing.
        cursor.execute(
            """
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
            """,
            [f"BENCH{first:020d}", f"BENCH{last:020d}"],
        )
        cursor.execute("ANALYZE")


def bill() -> tuple[float, object]:
    from datetime import UTC, date, datetime

    from django.db import connection

    from billing.services import run_billing

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE billing_meterread, billing_invoiceline, billing_invoice, billing_billingrun"
        )
    started = time.perf_counter()
    run = run_billing(date(2025, 1, 1), now=datetime(2025, 2, 3, tzinfo=UTC), by="bench")
    return time.perf_counter() - started, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    recreate_database(DB_NAME)
    try:
        setup_django()
        results, have = [], 0
        for size in sorted(args.sizes):
            started = time.perf_counter()
            populate(have, size)
            have = size
            generated = time.perf_counter() - started
            seconds, run = bill()
            print(
                f"{size:>7} meters: data {generated:.1f} s, run {seconds:.1f} s, "
                f"{run.invoices_issued} invoices, {run.failed} failed, "
                f"{size / seconds:.0f} accounts/s",
                flush=True,
            )
            results.append((size, seconds))
        print("\n| meters | readings | run seconds | accounts/s | growth |")
        print("|---:|---:|---:|---:|---:|")
        for index, (size, seconds) in enumerate(results):
            growth = (
                ""
                if index == 0
                else f"x{seconds / results[index - 1][1]:.1f} time for x"
                f"{size / results[index - 1][0]:.0f} meters"
            )
            print(
                f"| {size:,} | ~{size * 793:,} | {seconds:.1f} | {size / seconds:.0f} | {growth} |"
            )
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
