"""Every hour is billed exactly once and every correction is carried: credit notes keep the
correction, time-of-use bands and tier blocks that would bill energy twice or not at all are
refused, no two invoices cover the same days, and a draft's lines cannot move onto an issued
invoice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.forms import inlineformset_factory
from django.utils import timezone

from audit.models import AuditEvent, Outcome
from billing import services
from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    LineKind,
    MeterRead,
    TariffKind,
    TariffVersion,
    TierBlock,
    TouBand,
)

from .conftest import utc, write_readings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

JAN, FEB, MAR, APR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)
NOW = utc(2025, 4, 5)


def adjustments(invoice):
    return list(
        invoice.lines.filter(kind=LineKind.ADJUSTMENT).values_list(
            "corrects_id", "quantity", "amount"
        )
    )


def corrected_january(make_tariff, make_account):
    """January's last 12 hours are estimated at 500 Wh (6 kWh) but measured at 1,000 Wh
    (12 kWh): February carries a +6 kWh correction at 0.20 = 1.20."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    last = write_readings(meter, utc(2024, 12, 1), 61 * 24 + 12, wh0=1_000_000, per_hour=500)
    january = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    assert january.estimated
    after = write_readings(meter, utc(2025, 1, 31, 13), 11, wh0=last + 1000, per_hour=1000)
    write_readings(meter, utc(2025, 2, 1, 1), 60 * 24, wh0=after + 500, per_hour=500)
    february = services.issue_invoice(account, FEB, MAR, now=NOW, by="test")
    assert adjustments(february) == [(january.pk, Decimal("6.000"), Decimal("1.20"))]
    return account, january, february


def test_credit_note_rebill_carries_the_correction_again(make_tariff, make_account):
    """Crediting February cancels its +6 kWh correction of January too; the replacement
    carries it again, and March adds nothing (billed exactly once)."""
    account, january, february = corrected_january(make_tariff, make_account)
    note, replacement = services.issue_credit_note(
        february, actor="test", reason="wrong address", now=timezone.now()
    )
    assert note.total == -february.total
    assert adjustments(replacement) == [(january.pk, Decimal("6.000"), Decimal("1.20"))]
    assert replacement.total == february.total
    march = services.issue_invoice(account, MAR, APR, now=NOW, by="test")
    assert adjustments(march) == []


def test_credit_note_without_rebill_next_invoice_carries_the_correction(make_tariff, make_account):
    account, january, february = corrected_january(make_tariff, make_account)
    services.issue_credit_note(
        february, actor="test", reason="moved out", now=timezone.now(), rebill=False
    )
    march = services.issue_invoice(account, MAR, APR, now=NOW, by="test")
    assert adjustments(march) == [(january.pk, Decimal("6.000"), Decimal("1.20"))]


def january_tou(make_tariff, make_account, bands):
    tariff = make_tariff({"kind": TariffKind.TOU, "bands": bands})
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=1000)
    return account, tariff.versions.get()


def test_overlapping_bands_are_refused_not_billed_twice(make_tariff, make_account):
    """Day 07-24 and Peak 16-19 every day: hours 16-18 would be billed in both bands."""
    account, version = january_tou(
        make_tariff,
        make_account,
        [
            ("Night", "all", 0, 7, "0.10"),
            ("Day", "all", 7, 24, "0.25"),
            ("Peak", "all", 16, 19, "0.40"),
        ],
    )
    with pytest.raises(services.BillingError, match=rf"tariff version {version.pk} .*several"):
        services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    run = services.run_billing(JAN, FEB, now=NOW, by="test")
    assert (run.invoices_issued, run.failed) == (0, 1)
    assert not Invoice.objects.filter(account=account).exists()


def test_same_named_bands_with_different_day_types_are_refused(make_tariff, make_account):
    """Two bands called Day (weekday 0.30, weekend 0.10) would be priced with one price."""
    account, version = january_tou(
        make_tariff,
        make_account,
        [("Day", "weekday", 0, 24, "0.30"), ("Day", "weekend", 0, 24, "0.10")],
    )
    with pytest.raises(services.BillingError, match=rf"tariff version {version.pk} .*unique"):
        services.issue_invoice(account, JAN, FEB, now=NOW, by="test")


def test_band_gap_is_refused(make_tariff, make_account):
    account, _ = january_tou(
        make_tariff,
        make_account,
        [("Night", "all", 0, 7, "0.10"), ("Day", "weekday", 7, 24, "0.25")],
    )
    with pytest.raises(services.BillingError, match=r"weekend hours 07, .* no band"):
        services.issue_invoice(account, JAN, FEB, now=NOW, by="test")


def formset_data(prefix, rows, fields):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for field, value in zip(fields, row, strict=True):
            data[f"{prefix}-{i}-{field}"] = "" if value is None else str(value)
    return data


def test_admin_refuses_bad_bands_and_tiers(make_tariff):
    from billing.admin import TierBlockFormSet, TouBandFormSet

    tariff = make_tariff()
    band_fields = ["name", "day_type", "start_hour", "end_hour", "unit_price"]
    bands = inlineformset_factory(
        TariffVersion, TouBand, formset=TouBandFormSet, fields=list(band_fields)
    )
    tou = TariffVersion(tariff=tariff, valid_from=JAN, kind=TariffKind.TOU)
    good = [("Night", "all", 23, 7, "0.1"), ("Day", "all", 7, 23, "0.2")]
    assert bands(formset_data("bands", good, band_fields), instance=tou).is_valid()
    for bad in (
        [*good, ("Peak", "all", 16, 19, "0.4")],
        [("Day", "weekday", 0, 24, "0.3"), ("Day", "weekend", 0, 24, "0.1")],
    ):
        formset = bands(formset_data("bands", bad, band_fields), instance=tou)
        assert not formset.is_valid()
        assert "tariff version" in formset.non_form_errors()[0]
    tier_fields = ["position", "up_to_kwh", "unit_price"]
    tiers = inlineformset_factory(
        TariffVersion, TierBlock, formset=TierBlockFormSet, fields=list(tier_fields)
    )
    tiered = TariffVersion(tariff=tariff, valid_from=JAN, kind=TariffKind.TIERED)
    ok = [(1, "100", "0.1"), (2, None, "0.2")]
    assert tiers(formset_data("tiers", ok, tier_fields), instance=tiered).is_valid()
    bounded = tiers(formset_data("tiers", [(1, "100", "0.1")], tier_fields), instance=tiered)
    assert not bounded.is_valid() and "no upper bound" in bounded.non_form_errors()[0]


def test_tiers_without_unbounded_last_block_are_refused(make_tariff, make_account):
    """372 kWh against blocks of 100 and 300 kWh: 72 kWh would go unbilled."""
    tariff = make_tariff({"kind": TariffKind.TIERED, "tiers": [("100", "0.10"), ("300", "0.20")]})
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    with pytest.raises(services.BillingError, match="no upper bound"):
        services.issue_invoice(account, JAN, FEB, now=NOW, by="test")


def test_run_skips_and_flags_account_with_overlapping_invoice(make_tariff, make_account):
    """Billed for January on cycle day 1, then moved to cycle day 15: the run of 15 January -
    15 February would bill 15 - 31 January again. It is skipped and flagged; once January is
    credited (not re-billed) the account is billed."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 50, wh0=0, per_hour=500)
    january = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    BillingAccount.objects.filter(pk=account.pk).update(cycle_day=15)
    start = date(2025, 1, 15)
    run = services.run_billing(start, now=NOW, by="test")
    assert (run.accounts_total, run.invoices_issued, run.failed) == (1, 0, 1)
    assert Invoice.objects.filter(account=account).count() == 1
    event = AuditEvent.objects.filter(action="billing.account_overlap").get()
    assert event.outcome == Outcome.FAILURE and event.target == f"billing-account:{account.number}"
    assert event.details["invoice"] == january.number
    services.issue_credit_note(
        january, actor="test", reason="cycle day change", now=NOW, rebill=False
    )
    run = services.run_billing(start, now=NOW, by="test")
    assert (run.invoices_issued, run.failed) == (1, 0)


def test_second_open_account_at_premises_is_refused(make_tariff, make_account):
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    first, _ = make_account(tariff, opened_on=JAN)
    second = BillingAccount(
        number="B1",
        customer=first.customer,
        premises=first.premises,
        tariff=tariff,
        opened_on=MAR,
    )
    with pytest.raises(ValidationError, match=first.number):
        second.full_clean()
    # Overlapping only by the days before the first moves out is refused too.
    first.closed_on = date(2025, 3, 10)
    first.save()
    with pytest.raises(ValidationError):
        second.full_clean()
    # Moving in the day the first moves out is fine, and so is editing the first.
    second.opened_on = date(2025, 3, 10)
    second.full_clean()
    second.save()
    first.full_clean()


def test_trigger_refuses_moving_a_draft_line_onto_an_issued_invoice(make_tariff, make_account):
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    issued = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    draft = Invoice.objects.create(
        kind=InvoiceKind.CREDIT_NOTE,
        account=account,
        period_start=JAN,
        period_end=FEB,
        currency="GBP",
        created_by="test",
        created_at=NOW,
    )
    line = issued.lines.get(kind=LineKind.ENERGY)
    line.pk, line.invoice, line.position = None, draft, 99
    line.save()
    read = issued.reads.get()
    read.pk, read.invoice = None, draft
    read.save()
    # A draft's lines can still change ...
    InvoiceLine.objects.filter(invoice=draft).update(amount=Decimal("1.00"))
    # ... but not be moved onto an issued invoice.
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=draft).update(invoice=issued)
    with pytest.raises(IntegrityError), transaction.atomic():
        MeterRead.objects.filter(invoice=draft).update(invoice=issued)
    assert issued.lines.count() == 1 and issued.reads.count() == 1
