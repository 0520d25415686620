"""Timing of the sign-in, sign-up and reset answers per branch: does the time tell whether an
account exists, is staff, or whether a staff password was right? Median and spread per branch.

    .venv/bin/python bench/bench_auth_timing.py              # 60 requests per branch
    .venv/bin/python bench/bench_auth_timing.py --rounds 100

Needs PostgreSQL on localhost: a scratch database `bench_auth_timing` is created and dropped at
the end (--keep leaves it). Production-like settings (argon2, audit chain, allauth's flows);
tasks go to an in-memory broker and are not run, as a web worker hands them to Celery.
Requests go through the Django test client in this process (full middleware stack), the
branches of one form interleaved so that the machine's noise falls on all alike. Rate limits,
caps and lockouts are raised so that every request reaches the code under test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402

DB_NAME = "bench_auth_timing"
UNLIMITED = "100000/m/ip"


def configure() -> None:
    os.environ.update(
        scratch.django_environment(
            DB_NAME,
            ALLOWED_HOSTS="testserver",
            REDIS_URL="",
            CELERY_TASK_ALWAYS_EAGER="false",
            STATIC_ROOT=os.path.join(tempfile.gettempdir(), "bench_auth_timing_static"),
            RL_SIGNUP=UNLIMITED,
            RL_LOGIN=UNLIMITED,
            RL_LOGIN_FAILED=f"{UNLIMITED},100000/m/key",
            RL_RESET=f"{UNLIMITED},100000/m/key",
            RL_SIGNUP_PER_METER="100000",
            RL_SIGNUP_PER_EMAIL="100000",
            RL_RESET_PER_METER="100000",
            LOGIN_FAILURE_ALERT="100000",
            CAP_SIGNUPS_PER_HOUR="100000",
            CAP_RESETS_PER_HOUR="100000",
            STAFF_LOGIN_MAX_FAILURES="100000",
            STAFF_LOGIN_MAX_FAILURES_PER_IP="100000",
        )
    )


Branch = Callable[[int], object]


def forms(client) -> dict[str, dict[str, Branch]]:
    """{form: {branch: request(i)}}: each request answers as the product does."""
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import MeterOccupancy
    from accounts.services import create_staff_user
    from devices.models import Meter
    from testing.customers import CUSTOMER_PASSWORD, make_customer

    meter = Meter.objects.create(number="BENCHMETER000000000000001")
    customer = make_customer("known@example.com")
    MeterOccupancy.objects.create(user=customer, meter=meter, start=timezone.now())
    password = "correct-Horse-battery-9"
    staff, _device = create_staff_user(
        email="staff@example.com", password=password, role_names=["Support"], by="bench"
    )
    no2fa, _ = create_staff_user(
        email="no2fa@example.com", password=password, role_names=["Support"], by="bench"
    )
    TOTPDevice.objects.filter(user=no2fa).delete()
    unknown_meter = "ZZZZZZZZZZZZZZZZZZZZZZZZ9"

    def post(url: str, data: dict, expect: int) -> None:
        response = client.post(url, data)
        assert response.status_code == expect, (
            url,
            data,
            response.status_code,
            response.get("Location"),
        )
        client.cookies.clear()  # every attempt a fresh visitor

    def unthrottled(fn: Branch) -> Branch:
        def run(i: int) -> None:
            fn(i)
            TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)

        return run

    def staff_login(email: str, secret: str, code: str) -> Branch:
        data = {"username": email, "password": secret, "otp_token": code}
        return unthrottled(lambda i: post("/admin/login/", data, 200))

    def customer_login(email: str, secret: str) -> Branch:
        return lambda i: post("/accounts/login/", {"login": email, "password": secret}, 200)

    def reset(email: str, number: str) -> Branch:
        data = {"email": email, "meter_number": number}
        return lambda i: post("/accounts/password/reset/", data, 302)

    def signup(email: Callable[[int], str]) -> Branch:
        return lambda i: post(
            "/accounts/signup/", {"email": email(i), "meter_number": unknown_meter}, 302
        )

    return {
        "sign-up": {
            "known e-mail": signup(lambda i: "known@example.com"),
            "new e-mail": signup(lambda i: f"new{i}@example.com"),
        },
        "password reset": {
            "unknown e-mail": reset("nobody@example.com", meter.number),
            "known e-mail, other meter": reset("known@example.com", unknown_meter),
            "known e-mail, its meter": reset("known@example.com", meter.number),
        },
        "staff login": {
            "unknown account": staff_login("nobody@example.com", password, "000000"),
            "wrong password": staff_login(staff.email, "wrong-Password-77", "000000"),
            "right password, wrong code": staff_login(staff.email, password, "000000"),
            "right password, no second factor": staff_login(no2fa.email, password, "000000"),
            "a customer's right password": staff_login(customer.email, CUSTOMER_PASSWORD, "0"),
        },
        "customer login": {
            "unknown e-mail": customer_login("nobody@example.com", CUSTOMER_PASSWORD),
            "wrong password": customer_login(customer.email, "wrong password 77"),
            "staff e-mail, right password": customer_login(staff.email, password),
        },
    }


def run(rounds: int) -> dict[str, dict[str, list[float]]]:
    from django.test import Client

    client = Client()
    timings: dict[str, dict[str, list[float]]] = {}
    for form, branches in forms(client).items():
        for branch in branches.values():  # warm-up: connections, templates, hashers
            branch(-1)
        timings[form] = {name: [] for name in branches}
        for i in range(rounds):
            for name, branch in branches.items():
                start = time.perf_counter()
                branch(i)
                timings[form][name].append((time.perf_counter() - start) * 1000)
    return timings


def report(timings: dict[str, dict[str, list[float]]], rounds: int) -> None:
    print(f"\n{rounds} requests per branch, branches interleaved.\n")
    print("| form | branch | median | p10-p90 | spread of medians |")
    print("|---|---|---:|---:|---:|")
    for form, branches in timings.items():
        medians = {name: statistics.median(values) for name, values in branches.items()}
        spread = (max(medians.values()) - min(medians.values())) / min(medians.values())
        for n, (name, values) in enumerate(branches.items()):
            deciles = statistics.quantiles(values, n=10)
            first = n == 0
            print(
                f"| {form if first else ''} | {name} | {medians[name]:.1f} ms "
                f"| {deciles[0]:.1f} to {deciles[-1]:.1f} ms | {f'{spread:.1%}' if first else ''} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    configure()
    with scratch.migrated_django(DB_NAME, keep=args.keep):
        report(run(args.rounds), args.rounds)


if __name__ == "__main__":
    main()
