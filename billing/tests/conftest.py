"""Billing fixtures: tariffs, accounts and hourly readings written in bulk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import User
from billing.models import BillingAccount, Tariff, TariffVersion, TierBlock, TouBand
from devices.models import Premises
from devices.tests.conftest import kek, make_meter  # noqa: F401  (fixtures)
from readings.models import Reading

pytestmark = pytest.mark.postgres


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write_readings(meter, start: datetime, hours: int, *, wh0: int, per_hour: int, skip=()):
    """Cumulative reads at start, start+1h, ... (hours + 1 of them) rising by per_hour;
    hours whose datetime is in `skip` are left out (missing data). Returns the last register."""
    now = timezone.now()
    rows = []
    for i in range(hours + 1):
        hour = start + timedelta(hours=i)
        if hour not in skip:
            rows.append(
                Reading(meter=meter, hour=hour, wh=wh0 + i * per_hour, source=1, received_at=now)
            )
    Reading.objects.bulk_create(rows)
    return wh0 + hours * per_hour


@pytest.fixture
def make_tariff(db):
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
def make_account(db, make_meter):  # noqa: F811
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
