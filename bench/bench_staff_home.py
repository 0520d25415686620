"""Staff operations home benchmark: a superuser's /staff/ (every panel) over a fleet of 10,000
active meters with 31 days of hourly readings, billing accounts on every cycle day, a week of
rejected messages, a queue of downlinks, open cases and audit signals; p50/p95/max.

    .venv/bin/python bench/bench_staff_home.py                 # 10,000 meters, 200 rounds
    .venv/bin/python bench/bench_staff_home.py --meters 2000 --rounds 100

Needs PostgreSQL on localhost: a scratch database `bench_staff_home` is created, filled and
dropped at the end (--keep leaves it). Requests go through the Django test client in this
process (full middleware stack, a 2FA-verified staff session, templates), not over a socket.
The first request counts the 30 days of the read-success chart (beat does it hourly, so in
production no request does) and is reported on its own, as is the hourly recount of yesterday.
Target: p95 under 200 ms with 10,000 meters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402

DB_NAME = "bench_staff_home"
ANCHOR = "/staff/billing/runs/"
DAYS = 31


def configure() -> None:
    os.environ.update(
        scratch.django_environment(
            DB_NAME,
            ALLOWED_HOSTS="testserver",
            STATIC_ROOT=os.path.join(tempfile.gettempdir(), "bench_staff_home_static"),
        )
    )


def fill(meters: int) -> None:
    from django.db import connection

    t0 = time.perf_counter()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    params = {"n": meters, "start": now - timedelta(days=DAYS), "end": now, "now": now}
    with connection.cursor() as cursor:
        # Meters: all active, one in a hundred silent for two days.
        cursor.execute(
            """
            INSERT INTO devices_meter (number, status, manufacturer, model, batch,
                                       registered_at, last_message_at, rejected_while_suspended,
                                       software_version)
            SELECT 'BENCHSTAFF' || lpad(i::text, 15, '0'), 'active', '', '', '',
                   %(start)s, %(now)s - make_interval(hours => CASE WHEN i %% 100 = 0
                                                          THEN 48 ELSE i %% 12 END), 0, ''
              FROM generate_series(1, %(n)s) AS i
            """,
            params,
        )
        # Hourly readings; one meter in fifty misses an hour every day.
        cursor.execute(
            """
            INSERT INTO readings_reading (meter_id, hour, wh, source, received_at)
            SELECT m.id, h, (extract(epoch FROM h - %(start)s) / 3600)::bigint * 300,
                   1, h + interval '6 hours'
              FROM devices_meter m, generate_series(%(start)s, %(end)s, interval '1 hour') AS h
             WHERE m.id %% 50 <> 0 OR extract(hour FROM h)::int <> 3
            """,
            params,
        )
        # A week of rejected messages and a queue of downlinks.
        cursor.execute(
            """
            INSERT INTO smsgateway_inboundmessage (gateway, dedupe_key, sender, receiver, smsc,
                   gateway_time, coding, udh, payload, received_at, status, reason, detail,
                   meter_id)
            SELECT 'kannel', 'bench-' || i, '+447700900001', '+447700900000', '', NULL, 2,
                   ''::bytea, ''::bytea, %(now)s - make_interval(mins => i %% 10080),
                   'rejected',
                   (ARRAY['auth_failed','replay','unknown_sender','malformed'])[1 + i %% 4], '',
                   NULL
              FROM generate_series(1, 20000) AS i
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO smsgateway_outboundmessage (meter_id, msisdn, kind, payload, key_id,
                   counter, status, attempts, created_at, next_attempt_at, gateway_ref,
                   last_error)
            SELECT m.id, '+447700900001', 'ack', ''::bytea, 1, m.id, 'pending', 0,
                   %(now)s - interval '5 minutes', %(now)s, '', ''
              FROM devices_meter m WHERE m.id %% 20 = 0
            """,
            params,
        )
        cursor.execute("ANALYZE")
    print(f"filled {meters:,} meters and their readings in {time.perf_counter() - t0:.1f} s")
    fill_billing_and_cases(meters, now)


def fill_billing_and_cases(meters: int, now: datetime) -> None:
    from decimal import Decimal

    from accounts.models import User
    from audit.services import record
    from billing.models import BillingAccount, Tariff, TariffVersion
    from devices.models import Meter, Premises
    from fraud.models import Case

    tariff = Tariff.objects.create(code="BENCH", name="Bench flat")
    TariffVersion.objects.create(tariff=tariff, valid_from=date(2020, 1, 1), unit_price=Decimal(1))
    users = User.objects.bulk_create(
        [User(email=f"c{n}@example.com", password="!") for n in range(meters)]
    )
    premises = Premises.objects.bulk_create(
        [Premises(reference=f"P{n:06d}", address=f"{n} Bench Road") for n in range(meters)]
    )
    BillingAccount.objects.bulk_create(
        [
            BillingAccount(
                number=f"A{n:07d}",
                customer=user,
                premises=place,
                tariff=tariff,
                opened_on=date(2024, 1, 1),
                cycle_day=1 + n % 28,
            )
            for n, (user, place) in enumerate(zip(users, premises, strict=True))
        ]
    )
    some = list(Meter.objects.order_by("pk").values_list("pk", flat=True)[:: max(1, meters // 200)])
    Case.objects.bulk_create(
        [
            Case(
                meter_id=pk,
                cause="consumption_drop",
                severity=1 + n % 4,
                summary="bench",
                opened_at=now - timedelta(hours=n),
                last_detected_at=now,
            )
            for n, pk in enumerate(some)
        ]
    )
    for n in range(30):
        record("cap.exceeded" if n % 2 else "login.locked_out", actor="bench", target=str(n))
    record("audit.chain_verified", actor="bench", details={"checked": 30, "reason": ""})


def verified_client():
    from django.test import Client

    from accounts.services import create_staff_user
    from testing.staff import STAFF_PASSWORD, totp_now

    user, device = create_staff_user(
        email="bench@example.org",
        password=STAFF_PASSWORD,
        role_names=[],
        by="bench",
        superuser=True,
    )
    client = Client()
    response = client.post(
        "/admin/login/",
        {"username": user.email, "password": STAFF_PASSWORD, "otp_token": totp_now(device)},
    )
    assert response.status_code == 302, response.content[:300]
    return client


def run(rounds: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from operations.models import DailyReadRate
    from operations.runs import count_read_rates

    client = verified_client()
    start = time.perf_counter()
    assert client.get("/staff/").status_code == 200
    cold = (time.perf_counter() - start) * 1000
    # The anchor: a staff page with the same middleware, session and 2FA check and next to no
    # queries of its own, requested in turn with the home so both see the same machine load.
    urls = {"/staff/ (superuser, every panel)": "/staff/", "anchor: /staff/billing/runs/": ANCHOR}
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            start = time.perf_counter()
            response = client.get(url)
            timings[name].append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/staff/")
    assert b"Fleet health" in response.content and b"Revenue protection" in response.content
    now = timezone.now()
    DailyReadRate.objects.filter(day=now.date() - timedelta(days=1)).delete()
    start = time.perf_counter()
    count_read_rates(now=now)
    recount = (time.perf_counter() - start) * 1000

    print("\n| request | n | p50 | p95 | max |\n|---|---:|---:|---:|---:|")
    for name, values in timings.items():
        values.sort()
        p95 = values[int(0.95 * (len(values) - 1))]
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.1f} ms | {p95:.1f} ms "
            f"| {values[-1]:.1f} ms |"
        )
    home, anchor = (statistics.median(v) for v in timings.values())
    print(f"\nhome / anchor (p50): {home / anchor:.1f}; queries per home request: {len(queries)}")
    print(f"first request (counts 30 days of the chart): {cold:.0f} ms")
    print(f"hourly recount of yesterday (one day): {recount:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    configure()
    with scratch.migrated_django(DB_NAME, keep=args.keep):
        fill(args.meters)
        run(args.rounds)


if __name__ == "__main__":
    main()
