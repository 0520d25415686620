"""The customer portal and API under concurrent customers, over HTTP, served as deployed.

    .venv/bin/python bench/bench_portal_load.py                 # 10,000 meters, 50 customers
    .venv/bin/python bench/bench_portal_load.py --seconds 30 --others-days 7
    .venv/bin/python bench/bench_portal_load.py --keep          # then, on the same data:
    .venv/bin/python bench/bench_portal_load.py --reuse --no-usage-cache --scenario PortalCustomer

A scratch database (`bench_portal_load`, or --db) on the local PostgreSQL (and a Redis database,
--redis-db, for the cache and the API's throttle) gets 10,000 meters; 50 customers each have a
meter with two years of hourly readings, the other meters a recent month. The portal runs under
gunicorn with `deploy/gunicorn.conf.py` and production-like settings (--workers overrides the
config's count; --no-usage-cache runs it with READINGS_USAGE_CACHE_SECONDS=0). Locust
(bench/locust_portal.py) then runs the scenarios one after the other (--scenario picks some),
each with 50 concurrent signed-in users for `--seconds`, the cache emptied before each:
customers at a browser reading 5-30 s between views, the same without pause (the throughput),
API clients with personal tokens every 1-2 s, and without pause (the token throttle is lifted
for the whole run). Reported per request: count, failures (anything but a 200), p50, p95, p99
and requests/s, and the machine's load average. Target: p95 under 100 ms.

Locust, the portal and PostgreSQL share this machine's cores. Loopback only; every process is
stopped and the database dropped at the end (--keep leaves it, --reuse runs on it again).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import portal_data, scratch  # noqa: E402

DB_NAME = "bench_portal_load"
SCENARIOS = {
    "customers, 5-30 s reading": "PortalCustomer",
    "customers, no pause (saturation)": "PortalCustomerSaturating",
    "API, every 1-2 s": "ApiClient",
    "API, no pause (saturation)": "ApiClientSaturating",
}


def configure(workdir: Path, db_name: str, redis_db: int) -> dict[str, str]:
    env = scratch.django_environment(
        db_name,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        STATIC_ROOT=str(Path(tempfile.gettempdir()) / f"{db_name}-static"),
        # The saturating API clients would otherwise be refused after 120 requests a minute.
        API_TOKEN_RATE="1000000/min",
    )
    os.environ.update(env)
    return env


def prepare(meters: int, customers: int, others_days: int) -> None:
    """Meters, readings and customers with their meter."""
    from django.core.management import call_command

    from devices.models import Meter
    from testing.customers import make_customer

    call_command("migrate", verbosity=0)
    objs = Meter.objects.bulk_create([Meter(number=f"LOADMETER{n:016d}") for n in range(meters)])
    targets = objs[:customers]
    portal_data.fill_readings([m.pk for m in targets], others_days=others_days)
    start = portal_data.now_hour() - timedelta(days=800)
    for i, meter in enumerate(targets):
        make_customer(f"load{i}@example.com", meter, start=start)


def sign_in(customers: int) -> list[dict[str, str]]:
    """A session and a personal token for each customer (new ones on every run: the secret key
    is new too)."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from accounts.customers.portal.tokens import create_personal_token
    from accounts.models import MeterOccupancy, User

    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", "--noinput", verbosity=0)  # hashed names, as deployed
    people = []
    for i in range(customers):
        user = User.objects.get(email=f"load{i}@example.com")
        meter = MeterOccupancy.objects.select_related("meter").get(user=user).meter
        client = Client()
        client.force_login(user)
        _, token = create_personal_token(user, name="load", valid_days=30, now=timezone.now())
        people.append(
            {
                "number": meter.number,
                "cookie_name": settings.SESSION_COOKIE_NAME,
                "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "token": token,
            }
        )
    return people


def start_portal(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    from e2e.harness.portal import wait_for

    cmd = [
        sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}", "utility.wsgi:application",
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def answers() -> bool:
        import http.client

        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    wait_for(answers, timeout=30, what="the portal under gunicorn")
    return proc


def run_locust(
    user_class: str, *, port: int, users: int, seconds: int, workdir: Path
) -> dict[str, dict]:
    prefix = workdir / user_class
    cmd = [
        str(ROOT / ".venv" / "bin" / "locust"), "-f", str(ROOT / "bench" / "locust_portal.py"),
        "--headless", "--only-summary", "-u", str(users), "-r", str(users),
        "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix),
        "--loglevel", "WARNING", user_class,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_PORTAL_USERS=str(workdir / "customers.json"))
    subprocess.run(cmd, env=env, check=False, capture_output=True, timeout=seconds + 120)
    rows = {}
    with open(f"{prefix}_stats.csv", newline="") as stats:
        for row in csv.DictReader(stats):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "p99_ms": float(row["99%"]),
                "requests_per_second": round(float(row["Requests/s"]), 1),
            }
    rows["all"] = rows.pop("Aggregated")
    return rows


def report(results: dict[str, dict]) -> None:
    print("\n| scenario | request | n | failures | p50 | p95 | p99 | req/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for scenario, rows in results.items():
        for name, r in rows.items():
            print(
                f"| {scenario} | {name} | {r['requests']:,} | {r['failures']} "
                f"| {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['p99_ms']:.0f} ms "
                f"| {r['requests_per_second']} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=50, help="concurrent users")
    parser.add_argument("--others-days", type=int, default=31, help="history of other meters")
    parser.add_argument("--seconds", type=int, default=60, help="per scenario")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="the data of a run with --keep")
    parser.add_argument("--db", default=DB_NAME, help="name of the scratch database")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database index")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS.values()))
    parser.add_argument(
        "--no-usage-cache", action="store_true", help="READINGS_USAGE_CACHE_SECONDS=0"
    )
    parser.add_argument("--workers", type=int, help="instead of deploy/gunicorn.conf.py's")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-portal-load-"))
    env = configure(workdir, args.db, args.redis_db)
    if not args.reuse:
        scratch.recreate_database(args.db)
    portal = None
    try:
        import django

        django.setup()
        import redis
        from django.db import connections

        from e2e.harness.kannel import free_port

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        if not args.reuse:
            print(f"preparing {args.meters:,} meters, {args.customers} customers…", file=sys.stderr)
            prepare(args.meters, args.customers, args.others_days)
        people = sign_in(args.customers)
        (workdir / "customers.json").write_text(json.dumps(people))
        connections.close_all()
        port = free_port()
        portal_env = dict(os.environ)
        if args.no_usage_cache:
            portal_env["READINGS_USAGE_CACHE_SECONDS"] = "0"
        if args.workers:
            portal_env["GUNICORN_CMD_ARGS"] = f"--workers {args.workers}"
        portal = start_portal(portal_env, port, workdir / "gunicorn.log")
        results = {}
        for scenario, user_class in SCENARIOS.items():
            if args.scenario and user_class not in args.scenario:
                continue
            load = os.getloadavg()[0]
            print(
                f"{scenario}: {args.customers} users for {args.seconds} s (load {load:.1f})…",
                file=sys.stderr,
            )
            redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # a fresh throttle per scenario
            results[scenario] = run_locust(
                user_class, port=port, users=args.customers, seconds=args.seconds, workdir=workdir
            )
            time.sleep(2)
        report(results)
        command = shlex.join([".venv/bin/python", "bench/bench_portal_load.py", *sys.argv[1:]])
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\ncommand: {command}\nmachine: {os.cpu_count()} cpus, load average {load}")
        print(f"logs: {workdir}")
        failed = any(r["failures"] for rows in results.values() for r in rows.values())
        return 1 if failed else 0
    finally:
        if portal is not None:
            portal.terminate()
            portal.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            scratch.drop_database(args.db)


if __name__ == "__main__":
    sys.exit(main())
