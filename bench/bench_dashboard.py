"""Customer dashboard benchmark: one meter with two years of hourly readings among many meters,
the dashboard page and its three chart endpoints requested N times; p50/p95/max per URL.

    .venv/bin/python bench/bench_dashboard.py                  # 200 meters, 2 years, 200 rounds
    .venv/bin/python bench/bench_dashboard.py --meters 500 --rounds 300

Needs PostgreSQL on localhost: a scratch database `bench_dashboard` is created, filled and
dropped at the end (--keep leaves it). Requests go through the Django test client in this
process (full middleware stack, sessions, templates, the SQL of the charts), not over a socket.
Target (brief §6): p95 under 100 ms with two years of hourly data for the meter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import portal_data, scratch  # noqa: E402

DB_NAME = "bench_dashboard"


def configure() -> None:
    os.environ.update(
        scratch.django_environment(
            DB_NAME,
            ALLOWED_HOSTS="testserver",
            REDIS_URL=os.environ.get("BENCH_REDIS_URL", ""),
            STATIC_ROOT=os.path.join(tempfile.gettempdir(), "bench_dashboard_static"),
        )
    )


def recreate_database(drop_only: bool = False) -> None:
    (scratch.drop_database if drop_only else scratch.recreate_database)(DB_NAME)


def fill(meters: int) -> tuple[str, object]:
    """`meters` meters with two years of hourly data each would be 3.5 M rows; the others get a
    month (what matters is that the table and its partitions are not the meter's alone)."""
    from devices.models import Meter
    from testing.customers import make_customer

    objs = Meter.objects.bulk_create([Meter(number=f"BENCHMETER{n:015d}") for n in range(meters)])
    target = objs[0]
    portal_data.fill_readings([target.pk], others_days=31)
    start = portal_data.now_hour() - timedelta(days=800)
    user = make_customer("bench@example.com", target, start=start)
    return target.number, user


def run(rounds: int, number: str, user) -> dict[str, list[float]]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    urls = {
        "dashboard page": f"/portal/meters/{number}/",
        "hourly JSON (48 h)": f"/portal/meters/{number}/usage.json?resolution=hour",
        "daily JSON (60 d)": f"/portal/meters/{number}/usage.json?resolution=day",
        "monthly JSON (24 mo)": f"/portal/meters/{number}/usage.json?resolution=month",
    }
    for url in urls.values():  # warm-up: connections, template cache
        assert client.get(url).status_code == 200, url
    timings: dict[str, list[float]] = {name: [] for name in urls}
    timings["page + 3 JSON (one view)"] = []
    for _ in range(rounds):
        total = 0.0
        for name, url in urls.items():
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200
            timings[name].append(elapsed)
            total += elapsed
        timings["page + 3 JSON (one view)"].append(total)
    return timings


def report(timings: dict[str, list[float]]) -> None:
    print("\n| request | n | p50 | p95 | max |\n|---|---:|---:|---:|---:|")
    for name, values in timings.items():
        values = sorted(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.1f} ms | {p95:.1f} ms "
            f"| {values[-1]:.1f} ms |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    configure()
    recreate_database()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)  # hashed names, as deployed
        number, user = fill(args.meters)
        report(run(args.rounds, number, user))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(drop_only=True)


if __name__ == "__main__":
    main()
