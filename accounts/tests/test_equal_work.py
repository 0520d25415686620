"""Every branch of a login, sign-up and reset does the same work, so its time tells nothing
(finding: known e-mails answered sooner, a right staff password without the code in half the
time). Shown by what each branch runs (SQL statements, password hashes, tasks, e-mails), not
by timing; `bench/bench_auth_timing.py` measures the times."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from celery.signals import before_task_publish, task_prerun
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import MeterOccupancy
from devices.models import Meter
from testing.customers import CUSTOMER_PASSWORD, clear_customer_limits, make_customer
from testing.staff import STAFF_PASSWORD, CountingArgon2Hasher, totp_now
from utility.celery import app

TABLE = re.compile(r'(?:FROM|UPDATE|INTO|JOIN)\s+"?(\w+)"?', re.IGNORECASE)

# The meters made here get keys under a KEK of each test's own.
pytestmark = pytest.mark.usefixtures("kek")


@dataclass
class Work:
    statements: list[str] = field(default_factory=list)
    hashes: int = 0
    tasks: list[str] = field(default_factory=list)
    mails: int = 0


def _shape(sql: str) -> str:
    """A statement without its values: its verb and the tables it reads or writes."""
    return f"{sql.split(None, 1)[0].upper()} {' '.join(TABLE.findall(sql))}"


@contextmanager
def work_done():
    done = Work()

    def ran(sender=None, **kwargs):
        done.tasks.append(sender.name)

    def queued(sender=None, **kwargs):
        done.tasks.append(sender)

    task_prerun.connect(ran, weak=False)
    before_task_publish.connect(queued, weak=False)
    hashes, mails = CountingArgon2Hasher.calls, len(mail.outbox)
    try:
        with CaptureQueriesContext(connection) as queries:
            yield done
    finally:
        task_prerun.disconnect(ran)
        before_task_publish.disconnect(queued)
    done.statements = [_shape(q["sql"]) for q in queries.captured_queries]
    done.hashes = CountingArgon2Hasher.calls - hashes
    done.mails = len(mail.outbox) - mails


@pytest.fixture(autouse=True)
def _counting_hasher(settings):
    settings.PASSWORD_HASHERS = ["testing.staff.CountingArgon2Hasher"]
    clear_customer_limits()
    yield
    clear_customer_limits()


def _same_work(
    branches: dict[str, Callable[[], object]],
    between: Callable[[], object] = lambda: None,
    ignore: Callable[[str], bool] = lambda shape: False,
) -> dict[str, Work]:
    """Run each branch (after one warm-up of the first, so caches are equally warm) and
    assert they did the same work: the same statements (in any order), hashes, tasks, mails."""
    first = next(iter(branches.values()))
    first()
    done = {}
    for name, branch in branches.items():
        clear_customer_limits()
        between()
        with work_done() as done[name]:
            branch()
    for work in done.values():
        work.statements = sorted(shape for shape in work.statements if not ignore(shape))
    reference_name, reference = next(iter(done.items()))
    for name, work in done.items():
        assert work == reference, f"{name} differs from {reference_name}"
    return done


@pytest.mark.django_db
def test_every_staff_login_failure_does_the_same_work(client, make_staff, django_user_model):
    user, device = make_staff("sup@example.org", roles=["Support"])
    make_staff("no2fa@example.org", roles=["Support"])[1].delete()
    django_user_model.objects.create_user("cust@example.org", STAFF_PASSWORD)

    def login(email: str, password: str, code: str) -> Callable[[], object]:
        def post():
            response = client.post(
                "/admin/login/", {"username": email, "password": password, "otp_token": code}
            )
            assert response.status_code == 200 and "_auth_user_id" not in client.session

        return post

    def unthrottled():
        device.refresh_from_db()
        device.throttle_reset()

    wrong_code = f"{(int(totp_now(device)) + 1) % 1_000_000:06d}"
    done = _same_work(
        {
            "unknown account": login("nobody@example.org", STAFF_PASSWORD, wrong_code),
            "wrong password": login(user.email, "wrong-Password-77", wrong_code),
            "right password, wrong code": login(user.email, STAFF_PASSWORD, wrong_code),
            "right password, no code": login(user.email, STAFF_PASSWORD, ""),
            "right password, no second factor": login("no2fa@example.org", STAFF_PASSWORD, "1"),
            "a customer's right password": login("cust@example.org", STAFF_PASSWORD, "123456"),
        },
        between=unthrottled,
    )
    assert done["unknown account"].hashes == 1


@pytest.mark.django_db
def test_every_customer_login_failure_does_the_same_work(client, make_staff):
    from allauth.account.models import EmailAddress

    staff, _ = make_staff("sup@example.com", roles=["Support"])
    EmailAddress.objects.create(user=staff, email=staff.email, verified=True, primary=True)
    make_customer("known@example.com")
    pending = make_customer("pending@example.com")
    pending.set_unusable_password()
    pending.save()

    def login(email: str, password: str) -> Callable[[], object]:
        def post():
            response = client.post("/accounts/login/", {"login": email, "password": password})
            assert response.status_code == 200 and "_auth_user_id" not in client.session

        return post

    done = _same_work(
        {
            "unknown address": login("nobody@example.com", CUSTOMER_PASSWORD),
            "wrong password": login("known@example.com", "wrong password 77"),
            "staff, right password": login(staff.email, STAFF_PASSWORD),
            "staff, wrong password": login(staff.email, "wrong password 77"),
            "no password set yet": login("pending@example.com", CUSTOMER_PASSWORD),
        }
    )
    assert done["unknown address"].hashes == 1


@pytest.mark.django_db(transaction=True)
def test_every_password_reset_does_the_same_work(client, test_meter):
    from django.utils import timezone

    meter = Meter.objects.get(pk=test_meter().meter.pk)
    user = make_customer("known@example.com")
    MeterOccupancy.objects.create(user=user, meter=meter, start=timezone.now())
    other_number = "ZZZZZZZZZZZZZZZZZZZZZZZZ9"

    def reset(email: str, number: str) -> Callable[[], object]:
        def post():
            response = client.post(
                "/accounts/password/reset/", {"email": email, "meter_number": number}
            )
            assert response.status_code == 302

        return post

    # The one difference left: the reset link's token is made from the account's addresses,
    # read by primary key (two indexed lookups, well under a millisecond; bench figures in
    # docs/security.md). Everything else is the same statement for statement.
    token_reads = "SELECT account_emailaddress"
    done = _same_work(
        {
            "unknown address": reset("nobody@example.com", meter.number),
            "known address, another meter": reset("known@example.com", other_number),
            "known address, its meter": reset("known@example.com", meter.number),
        },
        ignore=lambda shape: shape == token_reads,
    )
    assert done["known address, its meter"].statements.count(token_reads) == 0  # ignored
    assert done["unknown address"].mails == 1 and done["unknown address"].hashes == 0


@pytest.fixture
def tasks_queued_not_run():
    """Tasks go to the broker (Redis) as from a web worker, instead of running in the test."""
    if not app.conf.broker_url.startswith("redis"):
        message = "needs the Redis broker (set REDIS_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": required in CI", pytrace=False)
        pytest.skip(message)
    eager, app.conf.task_always_eager = app.conf.task_always_eager, False
    yield
    app.conf.task_always_eager = eager
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_every_signup_does_the_same_work(client, tasks_queued_not_run):
    make_customer("known@example.com")
    number = "ZZZZZZZZZZZZZZZZZZZZZZZZ9"

    def signup(email: str) -> Callable[[], object]:
        def post():
            response = client.post("/accounts/signup/", {"email": email, "meter_number": number})
            assert response.status_code == 302 and response.url == "/accounts/confirm-email/"

        return post

    done = _same_work(
        {
            "known address": signup("known@example.com"),
            "known address, other case": signup("Known@Example.com"),
            "new address": signup("new@example.com"),
        }
    )
    assert done["new address"].tasks == ["accounts.register_customer"]
    assert done["new address"].hashes == done["new address"].mails == 0
