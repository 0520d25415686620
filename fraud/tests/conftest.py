"""Fixtures for revenue protection: meters with synthetic hourly histories, staff in the two
roles, and signed SD-card exports made by the real meter-agent code."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import Group

from accounts.roles import FIELD_ENGINEER, REVENUE_PROTECTION
from devices.models import Meter, MeterStatus, Premises
from fraud.attacks import Attack
from fraud.simulation import store_series
from meteragent.export import build_export
from meteragent.keyfile import public_bytes
from meteragent.sim.households import households
from meteragent.store import Store
from readings.models import Reading

# Scans run as of this moment (a Monday, 06:00 UTC): "today" is 2026-11-23.
NOW = datetime(2026, 11, 23, 6, tzinfo=UTC)
TODAY = datetime(2026, 11, 23, tzinfo=UTC)

# The fraud permissions each role must hold (accounts/roles.py); `fraud_roles` checks them.
ROLE_PERMISSIONS = {
    REVENUE_PROTECTION: [
        "view_case",
        "work_case",
        "dispatch_engineer",
        "approve_dispatch",
        "view_workorder",
        "view_readingsupload",
    ],
    FIELD_ENGINEER: ["field_work"],
}


@pytest.fixture(autouse=True)
def _fresh_kek(kek):
    """Meters made here get keys wrapped under a KEK of this test's own."""


@pytest.fixture
def fraud_roles(db):
    """The role groups as accounts/roles.py defines them (synced on migrate); checked here so a
    change to the role table that drops a permission these tests rely on fails loudly."""
    for role, codenames in ROLE_PERMISSIONS.items():
        have = set(
            Group.objects.get(name=role)
            .permissions.filter(content_type__app_label="fraud")
            .values_list("codename", flat=True)
        )
        assert set(codenames) <= have, (role, set(codenames) - have)


@pytest.fixture
def premises_meter(make_meter):
    """An active meter installed at a premises, heard from two hours ago."""
    counter = iter(range(1000))

    def make(*, premises: bool = True, **fields) -> Meter:
        meter = make_meter()
        n = next(counter)
        if premises:
            meter.premises = Premises.objects.create(
                reference=f"PREM{meter.pk:06d}{n}", address=f"{n} Test Street", postcode="AB1 2CD"
            )
        meter.status = MeterStatus.ACTIVE
        meter.last_message_at = NOW - timedelta(hours=2)
        for name, value in fields.items():
            setattr(meter, name, value)
        meter.save()
        return meter

    return make


def weekly(day: datetime, weekday_wh: float = 8000, weekend_wh: float = 12000) -> float:
    return weekend_wh if day.weekday() >= 5 else weekday_wh


HISTORY_DAYS = 119  # 17 weeks: TODAY - HISTORY_DAYS is a Monday, like the profiles' first day


def household_history(
    meter: Meter,
    seed: int,
    change: Attack | None = None,
    *,
    days_ago: int = 28,
    rng_seed: int = 0,
) -> list[float]:
    """Readings of committed household `seed` for the HISTORY_DAYS days before TODAY and
    today up to NOW, with `change` (an attack or look-alike of fraud.attacks) applied from
    `days_ago` days before TODAY. Returns the hourly series written."""
    series = list(households()[seed].hourly_wh[: 24 * HISTORY_DAYS + NOW.hour])
    if change is not None:
        series = change(series, HISTORY_DAYS - days_ago, random.Random(rng_seed))
    store_series(meter.pk, series, (TODAY - timedelta(days=HISTORY_DAYS)).date(), until=NOW)
    return series


def load_history(
    meter: Meter,
    daily_wh,
    *,
    days: int = 90,
    end: datetime = TODAY,
    noise: float = 0.1,
    seed: int = 1,
    start_wh: int = 1_000_000,
) -> int:
    """Hourly cumulative readings for `days` days up to `end` (exclusive) plus `end`'s first
    hours up to NOW; `daily_wh(day_index, day)` gives the day's use (day_index 0 = oldest).
    Returns the last cumulative value."""
    rng = random.Random(seed)
    rows, wh = [], start_wh
    first = end - timedelta(days=days)
    hour = first
    last = NOW
    while hour <= last:
        day = hour.replace(hour=0)
        index = (day - first).days
        use = max(0.0, daily_wh(index, day)) * (1 + rng.uniform(-noise, noise))
        rows.append(Reading(meter=meter, hour=hour, wh=int(wh), received_at=NOW))
        wh += use / 24
        hour += timedelta(hours=1)
    Reading.objects.bulk_create(rows)
    return int(wh)


@pytest.fixture
def signing_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def make_export(tmp_path, signing_key):
    """make_export(meter_number, [(unix_hour, wh), ...], key=None) -> the signed file bytes."""
    counter = iter(range(1000))

    def make(meter_number: str, readings, key: Ed25519PrivateKey | None = None) -> bytes:
        with Store(tmp_path / f"m{next(counter)}.db") as store:
            for hour, wh in readings:
                store.record_reading(hour, wh)
            return build_export(
                store,
                meter_number=meter_number,
                signing_key=key or signing_key,
                created_at=int(NOW.timestamp()),
                software_version="0.1.0",
            )

    return make


@pytest.fixture
def registered_key(signing_key):
    return public_bytes(signing_key)
