"""Property: over any history of billing runs, late readings, estimates, corrections, credit
notes and re-issues, every period is billed its metered consumption exactly once.

Hypothesis draws an account (flat, time-of-use or tiered tariff, maybe a price change mid-period,
maybe a move-in mid-month), its hourly consumption over four months that may cross a DST change,
gaps in the readings that arrive late, and a sequence of monthly runs with credit notes (with or
without a re-bill) of any billed month in between. Once every reading has arrived the fourth
month is billed (it carries the last corrections). The expected figures are computed here,
independently of the billing code, from the generated hours: per month and price key the kWh
(rounded to Wh) and its money at the price of the tariff version of that local day.

Lines are attributed to the month holding their segment (the days a line prices), whichever
document carries them, so the check does not rely on the billing code's own bookkeeping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services
from billing.conf import setting
from billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, TariffKind
from readings.models import Reading

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

KWH = Decimal("0.001")
MONTHS = 4  # three billed with history in between, the fourth once every reading is in
FIRST_MONTHS = [date(2025, 2, 1), date(2025, 6, 1), date(2025, 8, 1)]  # March and October DST
BANDS = {
    "all-day": [("Night", "all", 0, 7, "0.100000"), ("Day", "all", 7, 24, "0.250000")],
    "weekday-wrap": [
        ("Night", "weekday", 23, 7, "0.090000"),
        ("Day", "weekday", 7, 23, "0.310000"),
        ("Weekend", "weekend", 0, 24, "0.150000"),
    ],
}
TIERS = [("150", "0.100000"), ("400", "0.200000"), (None, "0.330000")]


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def kwh(wh: int) -> Decimal:
    return (Decimal(wh) / 1000).quantize(KWH, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class History:
    first: date
    kind: str
    bands: str
    change_day: int | None  # a price change on this day of the second month
    move_in_day: int  # 1: supplied from before the first month
    levels: list[int]  # Wh an hour, per 4-day block
    shape: list[int]  # per local hour of day, 0-4 (x/2 of the level)
    gaps: list[tuple[int, int, int]]  # (first hour, hours, arrives after this many steps)
    steps: list[tuple[str, int, bool]]  # ("run", month) / ("credit", month, re-bill)


@st.composite
def histories(draw) -> History:
    steps: list[tuple[str, int, bool]] = []
    for month in range(MONTHS - 1):
        steps.append(("run", month, False))
        for credited in draw(st.lists(st.integers(0, month), max_size=2)):
            steps.append(("credit", credited, draw(st.booleans())))
    span = (MONTHS - 1) * 31 * 24
    return History(
        first=draw(st.sampled_from(FIRST_MONTHS)),
        kind=draw(st.sampled_from([TariffKind.FLAT, TariffKind.TOU, TariffKind.TIERED])),
        bands=draw(st.sampled_from(sorted(BANDS))),
        change_day=draw(st.none() | st.integers(2, 28)),
        move_in_day=draw(st.sampled_from([1, 1, 9, 20])),
        levels=draw(st.lists(st.integers(0, 2500), min_size=40, max_size=40)),
        shape=draw(st.lists(st.integers(0, 4), min_size=24, max_size=24)),
        gaps=draw(
            st.lists(
                st.tuples(
                    st.integers(0, span),
                    st.integers(1, 24 * 4),
                    st.integers(0, len(steps)),
                ),
                max_size=4,
            )
        ),
        steps=steps,
    )


class Oracle:
    """The hours of the history and what each month should bill for them."""

    def __init__(self, history: History, versions: list) -> None:
        self.history = history
        self.zone = ZoneInfo(setting("BILLING_TIME_ZONE"))
        self.versions = versions  # TariffVersion rows with bands / tiers
        self.months = [add_months(history.first, i) for i in range(MONTHS + 1)]
        self.opened_on = history.first.replace(day=history.move_in_day)
        # Reads from 30 days before the first month (the estimates' profile) to 3 days after
        # the last one.
        self.t0 = self.midnight(history.first - timedelta(days=30))
        self.hours = int((self.midnight(self.months[-1]) - self.t0).total_seconds()) // 3600 + 72
        self.use = []
        for index in range(self.hours):
            local = self.local(index)
            level = history.levels[(index // 96) % len(history.levels)]
            self.use.append(level * history.shape[local.hour] // 2)
        self.registers = [100_000]
        for value in self.use:
            self.registers.append(self.registers[-1] + value)

    def midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).astimezone(UTC)

    def local(self, index: int) -> datetime:
        return (self.t0 + timedelta(hours=index)).astimezone(self.zone)

    def at(self, index: int) -> datetime:
        return self.t0 + timedelta(hours=index)

    def version(self, day: date):
        for version in self.versions:
            if version.valid_from <= day and (version.valid_to is None or day < version.valid_to):
                return version
        raise AssertionError(f"no version on {day}")

    def expected(self, month: int) -> dict[str, tuple[Decimal, Decimal]]:
        """{price key: (kWh, money)} for month `month`, energy and standing charge."""
        start, end = self.months[month], self.months[month + 1]
        first, last = max(start, self.opened_on), end
        wh: dict[str, int] = defaultdict(int)
        by_version: dict[int, int] = defaultdict(int)
        begin = int((self.midnight(first) - self.t0).total_seconds()) // 3600
        stop = int((self.midnight(last) - self.t0).total_seconds()) // 3600
        for index in range(begin, stop):
            local = self.local(index)
            version = self.version(local.date())
            by_version[version.pk] += self.use[index]
            if version.kind == TariffKind.TOU:
                weekend = local.isoweekday() >= 6
                for band in version.bands.all():
                    if band.day_type != "all" and (band.day_type == "weekend") != weekend:
                        continue
                    if band.start_hour < band.end_hour:
                        inside = band.start_hour <= local.hour < band.end_hour
                    else:
                        inside = local.hour >= band.start_hour or local.hour < band.end_hour
                    if inside:
                        wh[f"v{version.pk}:band:{band.name}"] += self.use[index]
        result: dict[str, tuple[Decimal, Decimal]] = {}
        for version in self.versions:
            seg_start = max(first, version.valid_from)
            seg_end = min(last, version.valid_to or last)
            if seg_start >= seg_end:
                continue
            days = (seg_end - seg_start).days
            result[f"v{version.pk}:standing"] = (
                Decimal(days),
                money(days * version.standing_charge_per_day),
            )
            if version.kind == TariffKind.FLAT:
                qty = kwh(by_version[version.pk])
                result[f"v{version.pk}:flat"] = (qty, money(qty * version.unit_price))
            elif version.kind == TariffKind.TOU:
                for band in version.bands.all():
                    key = f"v{version.pk}:band:{band.name}"
                    qty = kwh(wh[key])
                    result[key] = (qty, money(qty * band.unit_price))
            else:
                qty, lower = kwh(by_version[version.pk]), Decimal(0)
                scale = Decimal(days) / Decimal((end - start).days)
                for tier in version.tiers.all():
                    upper = None if tier.up_to_kwh is None else (tier.up_to_kwh * scale)
                    upper = None if upper is None else upper.quantize(KWH)
                    part = max((qty if upper is None else min(qty, upper)) - lower, Decimal(0))
                    key = f"v{version.pk}:tier:{tier.position}"
                    result[key] = (part, money(part * tier.unit_price))
                    if upper is None:
                        break
                    lower = upper
        return {key: value for key, value in result.items() if value != (0, 0)}


def billed_per_month(account, months: list[date]) -> list[dict[str, tuple[Decimal, Decimal]]]:
    """Net (quantity, amount) per price key of every issued line, per month of its segment."""
    result: list[dict[str, list[Decimal]]] = [
        defaultdict(lambda: [Decimal(0), Decimal(0)]) for _ in months[:-1]
    ]
    lines = InvoiceLine.objects.filter(
        invoice__account=account, invoice__status=InvoiceStatus.ISSUED
    )
    for line in lines:
        month = next(i for i in range(len(months) - 1) if line.segment_start < months[i + 1])
        assert line.segment_start >= months[month] and line.segment_end <= months[month + 1]
        result[month][line.key][0] += line.quantity
        result[month][line.key][1] += line.amount
    return [
        {key: (qty, amount) for key, (qty, amount) in month.items() if (qty, amount) != (0, 0)}
        for month in result
    ]


def make_versions(make_tariff, history: History):
    prices = [("0.200000", "0.450000", "0.05"), ("0.270000", "0.520000", "0.20")]
    specs = []
    for index, (unit_price, standing, tax) in enumerate(prices):
        spec = {
            "kind": history.kind,
            "standing_charge_per_day": Decimal(standing),
            "tax_rate": Decimal(tax),
        }
        if history.kind == TariffKind.FLAT:
            spec["unit_price"] = Decimal(unit_price)
        elif history.kind == TariffKind.TOU:
            bump = Decimal(index) / 100
            spec["bands"] = [
                (name, day, s, e, str(Decimal(price) + bump))
                for name, day, s, e, price in BANDS[history.bands]
            ]
        else:
            spec["tiers"] = [(up, str(Decimal(price) + Decimal(index) / 50)) for up, price in TIERS]
        specs.append(spec)
    if history.change_day is None:
        return make_tariff(specs[0])
    change = add_months(history.first, 1).replace(day=history.change_day)
    specs[0]["valid_to"] = change
    specs[1]["valid_from"] = change
    return make_tariff(*specs)


def play(history: History, make_tariff, make_account) -> None:
    tariff = make_versions(make_tariff, history)
    account, meter = make_account(tariff, opened_on=history.first.replace(day=history.move_in_day))
    versions = list(tariff.versions.prefetch_related("bands", "tiers"))
    oracle = Oracle(history, versions)
    arrives = [0] * (oracle.hours + 1)
    begin = int((oracle.midnight(history.first) - oracle.t0).total_seconds()) // 3600
    for first, length, step in history.gaps:
        for index in range(begin + first, min(begin + first + length, oracle.hours)):
            arrives[index] = max(arrives[index], step + 1)

    received = timezone.now()

    def arrive(step: int) -> None:
        Reading.objects.bulk_create(
            Reading(meter=meter, hour=oracle.at(i), wh=oracle.registers[i], received_at=received)
            for i in range(oracle.hours + 1)
            if arrives[i] == step
        )

    now = oracle.midnight(oracle.months[-1]) + timedelta(days=3)
    arrive(0)
    for number, (op, month, rebill) in enumerate(history.steps, start=1):
        start = oracle.months[month]
        if op == "run":
            services.run_billing(start, now=now, by="property")
        else:
            standing = Invoice.objects.filter(
                account=account,
                kind=InvoiceKind.INVOICE,
                period_start=start,
                credit_notes__isnull=True,
            ).first()
            if standing is not None:
                services.issue_credit_note(
                    standing, actor="property", reason="history", now=now, rebill=rebill
                )
                if not rebill:
                    assert billed_per_month(account, oracle.months)[month] == {}
        arrive(number)
    # Every late reading is in; the last month's run carries the remaining corrections.
    for step in range(len(history.steps) + 1, max(arrives) + 1):
        arrive(step)
    services.run_billing(oracle.months[MONTHS - 1], now=now, by="property")

    billed = billed_per_month(account, oracle.months)
    for month in range(MONTHS):
        standing = Invoice.objects.filter(
            account=account,
            kind=InvoiceKind.INVOICE,
            period_start=oracle.months[month],
            credit_notes__isnull=True,
        )
        assert standing.count() <= 1, f"month {month} has two standing invoices"
        expected = oracle.expected(month) if standing.exists() else {}
        assert billed[month] == expected, f"month {month} ({oracle.months[month]})"


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_every_month_is_billed_its_consumption_once(history, make_tariff, make_account):
    with transaction.atomic():
        play(history, make_tariff, make_account)
        transaction.set_rollback(True)
