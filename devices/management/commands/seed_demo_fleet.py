"""Demo only: a small fleet of provisioned meters with history, for the simulated agents."""

import json
import secrets
import string
import time
from datetime import UTC, datetime
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.commands.seed_demo import DEMO_PASSWORD
from accounts.models import MeterOccupancy, User
from devices.identifiers import luhn_check_digit
from devices.models import Meter, Premises, Sim
from devices.services import issue_bundle
from meteragent.console import meter_seed
from meteragent.energy import Bypass
from meteragent.sim.households import HouseholdEnergySource
from meteragent.store import Store
from readings.services import store_readings

HOUR = 3600
LIVE_HOURS = 48
# One household has wired most of its load around the meter for two weeks: the partial-bypass
# detector opens a case on the demo's first scan (fourteen days each far below the home's own
# baseline pass its CUSUM decision interval; docs/fraud.md).
BYPASSED_PREMISES = 3
BYPASS = {"days": 14, "fraction": 0.8}
DEMO_CUSTOMER = (
    "customer@example.org"  # the agents backfill these themselves and send them over the webhook
)


class Command(BaseCommand):
    help = (
        "Create demo meters with SIMs, premises and history, and write their provisioning "
        "bundles for `python -m meteragent.sim.fleet` (refused when DEBUG is off)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--meters", type=int, default=5)
        parser.add_argument("--history-days", type=int, default=730)
        parser.add_argument("--dir", type=Path, default=Path(settings.DATA_DIR) / "demo-fleet")

    def handle(self, *args, meters: int, history_days: int, dir: Path, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is only for a DEBUG (embedded) install.")
        bundles = dir / "bundles"
        if bundles.exists() and any(bundles.glob("*.json")):
            self.stdout.write(f"Demo fleet already in {dir}.")
            return
        bundles.mkdir(parents=True, exist_ok=True, mode=0o700)
        now_hour = int(time.time()) // HOUR
        anchor_hour = now_hour - LIVE_HOURS  # history up to here; the agents send the rest
        first_hour = now_hour - history_days * 24
        alphabet = string.ascii_uppercase + string.digits
        for i in range(meters):
            number = "".join(secrets.choice(alphabet) for _ in range(25))
            with transaction.atomic():
                premises = Premises.objects.create(
                    reference=f"DEMO-{i + 1:04d}",
                    address=f"{i + 1} Demo Street",
                    postcode="DE1 1MO",
                )
                meter = Meter.objects.create(
                    number=number, manufacturer="Demo", model="SIM-1", premises=premises
                )
                msisdn = f"+44770090{2000 + i}"
                body = f"89445006{i:010d}"
                Sim.objects.create(msisdn=msisdn, iccid=body + luhn_check_digit(body), meter=meter)
            bundle = issue_bundle(meter, by="seed_demo_fleet command")
            path = bundles / f"{number}.json"
            path.touch(mode=0o600)
            path.write_bytes(bundle)
            (bundles / f"{number}.json.msisdn").write_text(msisdn + "\n")
            bypass = None
            if i + 1 == BYPASSED_PREMISES:
                bypass = Bypass(
                    since=(now_hour - BYPASS["days"] * 24) * HOUR, fraction=BYPASS["fraction"]
                )
                (bundles / f"{number}.json.bypass").write_text(
                    json.dumps({"since": bypass.since, "fraction": bypass.fraction})
                )

            # History: the register of one of the committed realistic households (the same one
            # the live agent continues with), hour by hour, stored as if reported.
            energy = HouseholdEnergySource(
                seed=meter_seed(number), start=first_hour * HOUR, bypass=bypass
            )
            history = [
                (hour, energy.read(hour * HOUR).wh) for hour in range(first_hour, anchor_hour + 1)
            ]
            with transaction.atomic():
                for start in range(0, len(history), 2000):
                    store_readings(
                        meter.pk,
                        history[start : start + 2000],
                        received_at=timezone.now(),
                    )
                Meter.objects.filter(pk=meter.pk).update(acked_through_hour=anchor_hour)
            # The meter remembers its last acknowledged reading, so it continues from there.
            data = dir / "data" / number
            data.mkdir(parents=True, exist_ok=True, mode=0o700)
            with Store(data / "meter.db") as store:
                store.record_reading(anchor_hour, history[-1][1])
                store.mark_acknowledged(anchor_hour)
            self.stdout.write(f"  meter {number} (SIM {msisdn}): {len(history)} hours of history")
        self._demo_customer(first_hour)
        self.stdout.write(f"Demo fleet of {meters} meters in {dir}.")

    def _demo_customer(self, first_hour: int) -> None:
        """A customer who lives at the first demo premises since the history began."""
        meter = Meter.objects.filter(premises__reference="DEMO-0001").first()
        if meter is None or User.objects.filter(email=DEMO_CUSTOMER).exists():
            return
        user = User.objects.create_user(DEMO_CUSTOMER, DEMO_PASSWORD, full_name="Demo Customer")
        EmailAddress.objects.create(user=user, email=DEMO_CUSTOMER, verified=True, primary=True)
        MeterOccupancy.objects.create(
            user=user, meter=meter, start=datetime.fromtimestamp(first_hour * HOUR, tz=UTC)
        )
        self.stdout.write(
            f"  demo customer {DEMO_CUSTOMER} (password {DEMO_PASSWORD}) lives with meter {meter}"
        )
