"""Demo only: the staff side of the demo, made through the product's own services once the
simulated meters have reported (after seed_demo and seed_demo_fleet, with the fleet running)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.management.commands.seed_demo import DEMO_PASSWORD
from accounts.models import MeterOccupancy, User
from audit.tasks import verify_chain_task
from billing.models import (
    BillingAccount,
    DayType,
    Tariff,
    TariffKind,
    TariffVersion,
    TierBlock,
    TouBand,
)
from billing.services import add_months, run_billing
from devices.management.commands.seed_demo_fleet import BYPASSED_PREMISES
from devices.models import Meter, MeterStatus
from devices.services import schedule_rotations
from fraud.models import Case
from fraud.services import dispatch
from operations import launch
from readings.models import Reading

BY = "seed_demo_operations command"
# (code, name, kind, version fields, bands or tiers)
TARIFFS = [
    ("DEMO-FLAT", "Simple flat rate", TariffKind.FLAT, {"unit_price": Decimal("0.245")}),
    ("DEMO-TOU", "Night saver (time of use)", TariffKind.TOU, {}),
    ("DEMO-TIER", "Lifeline (tiered)", TariffKind.TIERED, {}),
]
TOU_BANDS = [("Night", 0, 7, "0.12"), ("Day", 7, 16, "0.25"), ("Peak", 16, 19, "0.38")]
TOU_BANDS += [("Evening", 19, 24, "0.25")]
TIERS = [(Decimal("150"), "0.18"), (None, "0.29")]
# Tariff of each demo premises (1-based), in turn.
PREMISES_TARIFFS = ["DEMO-FLAT", "DEMO-TOU", "DEMO-TIER", "DEMO-FLAT", "DEMO-TOU"]
ROTATED_PREMISES = 5


def _ok(text: str) -> str:
    return f"  {text}"


class Command(BaseCommand):
    help = (
        "Create the demo's tariffs, billing accounts, months of invoices from real billing "
        "runs, a detector scan (which finds the bypassed household), a dispatched work order and "
        "a key rotation (refused when DEBUG is off)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--months", type=int, default=3, help="months of invoices")
        parser.add_argument("--wait-seconds", type=int, default=180)

    def handle(self, *args, months: int, wait_seconds: int, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is only for a DEBUG (embedded) install.")
        if Tariff.objects.filter(code="DEMO-FLAT").exists():
            self.stdout.write("Demo operations data already there.")
            return
        meters = self._wait_for_fleet(wait_seconds)
        tariffs = self._tariffs()
        self._accounts(meters, tariffs)
        self._bill(months)
        case = self._scan(meters)
        if case is not None:
            self._dispatch(case)
        self._rotate(meters[ROTATED_PREMISES - 1])
        verified = verify_chain_task()
        self.stdout.write(_ok(f"audit chain verified: {verified['checked']} records"))

    def _wait_for_fleet(self, wait_seconds: int) -> list[Meter]:
        """The demo meters, once each is active and has reported up to the last hour (the scan
        needs their last days)."""
        deadline = time.monotonic() + wait_seconds
        demo = Meter.objects.filter(premises__reference__startswith="DEMO-").order_by(
            "premises__reference"
        )
        while True:
            latest = int(time.time()) // 3600 - 2
            meters = list(demo.all())
            ready = [
                m
                for m in meters
                if m.status == MeterStatus.ACTIVE and (m.acked_through_hour or 0) >= latest
            ]
            if meters and len(ready) == len(meters):
                return meters
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{len(ready)} of {len(meters)} demo meters reported within {wait_seconds} s; "
                    "is the simulated fleet running?"
                )
            time.sleep(2)

    def _tariffs(self) -> dict[str, Tariff]:
        tariffs = {}
        with transaction.atomic():
            for code, name, kind, fields in TARIFFS:
                tariff = Tariff(code=code, name=name)
                tariff.full_clean()
                tariff.save()
                version = TariffVersion(
                    tariff=tariff,
                    valid_from=date(2020, 1, 1),
                    kind=kind,
                    standing_charge_per_day=Decimal("0.45"),
                    tax_rate=Decimal("0.05"),
                    **fields,
                )
                version.full_clean()
                version.save()
                for band, start, end, price in TOU_BANDS if kind == TariffKind.TOU else []:
                    TouBand(
                        version=version,
                        name=band,
                        day_type=DayType.ALL,
                        start_hour=start,
                        end_hour=end,
                        unit_price=Decimal(price),
                    ).save()
                for position, (up_to, price) in enumerate(
                    TIERS if kind == TariffKind.TIERED else [], start=1
                ):
                    TierBlock(
                        version=version, position=position, up_to_kwh=up_to, unit_price=price
                    ).save()
                tariffs[code] = tariff
                self.stdout.write(_ok(f"tariff {code}: {name}"))
        return tariffs

    def _customer(self, meter: Meter, n: int, since) -> User:
        """The household living with the meter: the demo customer at the first premises."""
        occupancy = MeterOccupancy.objects.filter(meter=meter).select_related("user").first()
        if occupancy:
            return occupancy.user
        email = f"household{n}@example.org"
        user = User.objects.create_user(email, DEMO_PASSWORD, full_name=f"Demo Household {n}")
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        MeterOccupancy.objects.create(user=user, meter=meter, start=since)
        return user

    def _accounts(self, meters: list[Meter], tariffs: dict[str, Tariff]) -> None:
        first = Reading.objects.filter(meter__in=meters).aggregate(first=Min("hour"))["first"]
        opened_on = first.date() + timedelta(days=1)
        for n, meter in enumerate(meters, start=1):
            customer = self._customer(meter, n, first)
            account = BillingAccount(
                number=f"DEMO-{n:04d}",
                customer=customer,
                premises=meter.premises,
                tariff=tariffs[PREMISES_TARIFFS[(n - 1) % len(PREMISES_TARIFFS)]],
                opened_on=opened_on,
                cycle_day=1,
            )
            account.full_clean()
            account.save()
            self.stdout.write(_ok(f"account {account.number} for {customer.email} ({meter})"))

    def _bill(self, months: int) -> None:
        this_month = timezone.localdate().replace(day=1)
        for back in range(months, 0, -1):
            start = add_months(this_month, -back)
            # In this process, month after month (the path of `manage.py run_billing`): each
            # month's corrections need the month before billed.
            run = run_billing(start, now=timezone.now(), by=BY)
            self.stdout.write(
                _ok(
                    f"billing run {run.period_start} to {run.period_end}: "
                    f"{run.invoices_issued} invoices issued"
                )
            )

    def _scan(self, meters: list[Meter]) -> Case | None:
        result = launch.run_scan({}, BY, timezone.now(), lambda *_: None)
        self.stdout.write(_ok(f"detector scan: {result['opened']} case(s) opened"))
        bypassed = meters[BYPASSED_PREMISES - 1]
        case = Case.objects.filter(meter=bypassed).order_by("-severity").first()
        if case is None:
            self.stderr.write(f"  the scan opened no case for the bypassed meter {bypassed}")
        return case

    def _dispatch(self, case: Case) -> None:
        engineer = User.objects.get(email="field-engineer@example.org")
        officer = User.objects.get(email="revenue-protection@example.org")
        order = dispatch(
            case,
            engineer,
            by=officer,
            now=timezone.now(),
            note="Readings dropped by four fifths two weeks ago: check for a bypass.",
        )
        self.stdout.write(_ok(f"work order {order.pk} for case {case.pk} to {engineer.email}"))

    def _rotate(self, meter: Meter) -> None:
        officer = User.objects.get(email="security-admin@example.org")
        schedule_rotations([meter], by=officer)
        self.stdout.write(_ok(f"key rotation scheduled for meter {meter}"))
