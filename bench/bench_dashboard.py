"""Customer dashboard benchmark: one meter with two years of hourly readings among many meters,
the dashboard page and its three chart endpoints requested N times; p50/p95/max per URL.

    .venv/bin/python bench/bench_dashboard.py                  # 200 meters, 2 years, 200 rounds
    .venv/bin/python bench/bench_dashboard.py --meters 500 --rounds 300
    .venv/bin/python bench/bench_dashboard.py --db bench_portal_load --reuse --breakdown

--breakdown: per request, the number of SQL queries and the time in the database, in template
rendering and in the rest (Python: middleware, session, view, JSON), medians over the rounds,
with the usage cache off and on; --profile adds cProfile's top functions of the dashboard page.
--reuse runs on the data of `bench_portal_load.py --keep` (its first customer) or of an earlier
run of this one with --keep.

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


def configure(db_name: str) -> None:
    os.environ.update(
        scratch.django_environment(
            db_name,
            ALLOWED_HOSTS="testserver",
            REDIS_URL=os.environ.get("BENCH_REDIS_URL", ""),
            STATIC_ROOT=os.path.join(tempfile.gettempdir(), "bench_dashboard_static"),
        )
    )


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


def existing_customer() -> tuple[str, object]:
    from accounts.models import MeterOccupancy

    occupancy = MeterOccupancy.objects.select_related("meter", "user").order_by("pk").first()
    return occupancy.meter.number, occupancy.user


def dashboard_urls(number: str) -> dict[str, str]:
    return {
        "dashboard page": f"/portal/meters/{number}/",
        "hourly JSON (48 h)": f"/portal/meters/{number}/usage.json?resolution=hour",
        "daily JSON (60 d)": f"/portal/meters/{number}/usage.json?resolution=day",
        "monthly JSON (24 mo)": f"/portal/meters/{number}/usage.json?resolution=month",
    }


def run(rounds: int, number: str, user) -> dict[str, list[float]]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    urls = dashboard_urls(number)
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


class Clock:
    """Time spent in SQL (a connection execute wrapper) and in template rendering."""

    def __init__(self) -> None:
        self.queries = 0
        self.sql = 0.0
        self.template = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries += 1
            self.sql += time.perf_counter() - start


def breakdown(rounds: int, number: str, user, profile: bool) -> None:
    """Per request: queries, and milliseconds in SQL, templates and the rest (medians)."""
    from django.db import connection
    from django.template.backends.django import Template
    from django.test import Client, override_settings

    client = Client()
    client.force_login(user)
    clock = Clock()
    render = Template.render

    def timed_render(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return render(self, *args, **kwargs)
        finally:
            clock.template += time.perf_counter() - start

    Template.render = timed_render
    print("\n| usage cache | request | queries | total | SQL | templates | rest (Python) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for cache_seconds in (0, 3600):
        with override_settings(READINGS_USAGE_CACHE_SECONDS=cache_seconds):
            for name, url in dashboard_urls(number).items():
                client.get(url)  # warm-up (and, with the cache, the entry)
                rows = []
                for _ in range(rounds):
                    clock.__init__()
                    start = time.perf_counter()
                    with connection.execute_wrapper(clock):
                        assert client.get(url).status_code == 200
                    total = time.perf_counter() - start
                    rows.append((clock.queries, total, clock.sql, clock.template))
                q, total, sql, tpl = (statistics.median(c) for c in zip(*rows, strict=True))
                print(
                    f"| {'on' if cache_seconds else 'off'} | {name} | {q:.0f} "
                    f"| {total * 1000:.1f} ms | {sql * 1000:.1f} ms | {tpl * 1000:.1f} ms "
                    f"| {(total - sql - tpl) * 1000:.1f} ms |"
                )
    Template.render = render
    if profile:
        import cProfile
        import pstats

        url = dashboard_urls(number)["dashboard page"]
        for cache_seconds in (0, 3600):
            with override_settings(READINGS_USAGE_CACHE_SECONDS=cache_seconds):
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(rounds):
                    client.get(url)
                profiler.disable()
                print(f"\ndashboard page, usage cache {'on' if cache_seconds else 'off'}:")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--db", default=DB_NAME, help="name of the scratch database")
    parser.add_argument("--reuse", action="store_true", help="the data of a run with --keep")
    parser.add_argument("--breakdown", action="store_true", help="where each request's time goes")
    parser.add_argument("--profile", action="store_true", help="with --breakdown: cProfile")
    args = parser.parse_args()

    configure(args.db)
    with scratch.migrated_django(args.db, fresh=not args.reuse, keep=args.keep):
        number, user = existing_customer() if args.reuse else fill(args.meters)
        if args.breakdown:
            breakdown(args.rounds, number, user, args.profile)
        else:
            report(run(args.rounds, number, user))


if __name__ == "__main__":
    main()
