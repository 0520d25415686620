"""The project's pytest plugin (registered in the root conftest.py): real services, and the
fixtures more than one app's tests use — staff with a second factor, meters with keys, a test
meter and a gateway client, tariffs and billing accounts, revenue-protection staff and cases.
Fixtures used by one app only stay in that app's tests/conftest.py.

Project code is imported inside the fixtures: the meter agent's tests also run without Django
(`-p no:django`), and this plugin loads before any test does.
"""

from __future__ import annotations

import itertools
import os
from datetime import date
from decimal import Decimal

import pytest


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    return [
        f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('NAME')} (tests use test_<name>)",
        f"redis: {settings.REDIS_URL or 'not configured'}",
    ]


def pytest_runtest_setup(item):
    """Tests about Redis fail in CI without it, and skip with the reason elsewhere (pytest run
    directly; scripts/test.sh always provides one)."""
    from django.conf import settings

    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        message = "needs Redis (set REDIS_URL, or run ./scripts/test.sh, which starts one)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": required in CI", pytrace=False)
        pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    # Tests about queuing start a real worker and switch this off themselves.
    from utility.celery import app

    app.conf.task_always_eager = True
    yield


@pytest.fixture(autouse=True)
def _celery_join_flag():
    """Eager tasks run while a task is running switch Celery's process-wide "inside a task"
    flag on and back; two threads doing it at once (the concurrent drain tests) can leave it
    on, and a later test's `result.get()` would refuse. This process is never a worker."""
    yield
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Rate-limit and lockout counters live in the cache (Redis in CI): each test starts clean.
    (Skipped when the meter agent's tests run on their own, without Django.)"""
    if request.config.pluginmanager.hasplugin("django"):
        from django.core.cache import cache

        cache.clear()
    yield


# ---- staff ----


@pytest.fixture
def make_staff(db):
    """make_staff(email, roles=[...], superuser=False) -> (user, totp_device)."""
    from accounts.services import create_staff_user
    from testing.staff import STAFF_PASSWORD

    def make(email: str, roles: list[str] | None = None, superuser: bool = False):
        return create_staff_user(
            email=email,
            password=STAFF_PASSWORD,
            role_names=roles or [],
            by="test",
            superuser=superuser,
        )

    return make


@pytest.fixture
def verified_client(client):
    """verified_client(user, device) -> the test client, signed in through the staff login."""

    from testing.staff import STAFF_PASSWORD, totp_now

    def sign_in(user, device):
        response = client.post(
            "/admin/login/",
            {"username": user.email, "password": STAFF_PASSWORD, "otp_token": totp_now(device)},
        )
        assert response.status_code == 302, response.content[:500]
        return client

    return sign_in


# ---- meters and their keys ----


@pytest.fixture
def kek(settings):
    """A fresh key-encryption key per test; this test process may unwrap (an sms worker).
    The test suites that make meter keys use it for every test (their conftest.py)."""
    from devices.keystore import generate_kek
    from devices.selectors import reset_keystore

    kek_id, public, private = generate_kek()
    settings.DEVICE_KEK_PUBLIC_KEY = public
    settings.DEVICE_KEK_PRIVATE_KEYS = [private]
    reset_keystore()
    yield {"id": kek_id, "public": public, "private": private}
    reset_keystore()


@pytest.fixture
def make_meter(db):
    from devices.models import Meter, Sim
    from testing.devices import luhn_iccid

    counter = iter(range(10_000))

    def make(number: str | None = None, with_sim: bool = True) -> Meter:
        n = next(counter)
        meter = Meter.objects.create(number=number or f"TESTMETER{n:016d}")
        if with_sim:
            Sim.objects.create(
                msisdn=f"+4477009{n:05d}", iccid=luhn_iccid(f"894450010219{n:06d}"), meter=meter
            )
        return meter

    return make


@pytest.fixture
def active_meter(make_meter):
    """A meter that loaded its bundle and has been heard from: (meter, root key, key id)."""
    from django.utils import timezone

    from devices.services import issue_bundle, key_used
    from meteragent.bundle import parse_bundle

    def make():
        meter = make_meter()
        bundle = parse_bundle(issue_bundle(meter, by="test"))
        key_used(meter, bundle.key_id, at=timezone.now())
        meter.refresh_from_db()
        return meter, bundle.root_key, bundle.key_id

    return make


@pytest.fixture
def test_meter(active_meter):
    """test_meter() -> a `testing.sms.TestMeter` for a new active meter."""
    from meteragent.protocol import derive_keys
    from testing.sms import TestMeter

    def make() -> TestMeter:
        meter, root, key_id = active_meter()
        return TestMeter(meter, derive_keys(root, key_id))

    return make


_gateway_ids = itertools.count(1)


@pytest.fixture
def post_sms(client, settings):
    """post_sms(sender, payload, **query) → the webhook response, as Kannel's post-url sends."""
    from urllib.parse import quote_from_bytes

    def post(sender: str, payload: bytes, *, gateway_id: str | None = None, secret=None, **extra):
        query = {
            "secret": settings.SMS_GATEWAY_SECRET if secret is None else secret,
            "from": sender,
            "to": settings.SMS_GATEWAY_MSISDN,
            "id": gateway_id or f"kannel-{next(_gateway_ids)}",
            "coding": "1",
            "smsc": "fake",
            **extra,
        }
        qs = "&".join(
            f"{k}={quote_from_bytes(v if isinstance(v, bytes) else str(v).encode(), safe='')}"
            for k, v in query.items()
        )
        return client.post(
            f"/sms/kannel/inbound?{qs}", data=payload, content_type="application/octet-stream"
        )

    return post


# ---- billing ----


@pytest.fixture
def make_tariff(db):
    from billing.models import Tariff, TariffVersion, TierBlock, TouBand

    counter = iter(range(1000))

    def make(*versions: dict) -> Tariff:
        n = next(counter)
        tariff = Tariff.objects.create(code=f"T{n}", name=f"Tariff {n}")
        for spec in versions:
            spec = dict(spec)
            bands = spec.pop("bands", [])
            tiers = spec.pop("tiers", [])
            spec.setdefault("valid_from", date(2020, 1, 1))
            version = TariffVersion.objects.create(tariff=tariff, **spec)
            for name, day_type, start, end, price in bands:
                TouBand.objects.create(
                    version=version,
                    name=name,
                    day_type=day_type,
                    start_hour=start,
                    end_hour=end,
                    unit_price=Decimal(price),
                )
            for position, (up_to, price) in enumerate(tiers, start=1):
                TierBlock.objects.create(
                    version=version,
                    position=position,
                    up_to_kwh=None if up_to is None else Decimal(up_to),
                    unit_price=Decimal(price),
                )
        return tariff

    return make


@pytest.fixture
def make_account(db, make_meter):
    from accounts.models import User
    from billing.models import BillingAccount
    from devices.models import Premises

    counter = iter(range(1000))

    def make(tariff, *, opened_on=date(2020, 1, 1), cycle_day=1, meter=True, customer=None):
        n = next(counter)
        premises = Premises.objects.create(reference=f"P{n:05d}", address=f"{n} Test Street")
        customer = customer or User.objects.create_user(f"customer{n}@example.com")
        account = BillingAccount.objects.create(
            number=f"A{n:06d}",
            customer=customer,
            premises=premises,
            tariff=tariff,
            opened_on=opened_on,
            cycle_day=cycle_day,
        )
        meter_obj = None
        if meter:
            meter_obj = make_meter()
            meter_obj.premises = premises
            meter_obj.save(update_fields=["premises"])
        return account, meter_obj

    return make
