"""Corrections over a history of estimates, credit notes and re-issues: every kWh of a period is
billed exactly once, whichever documents carry it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing import services
from billing.models import Invoice, InvoiceLine, LineKind, TariffKind

from .conftest import utc, write_readings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

JUL, AUG, SEP, OCT = date(2025, 7, 1), date(2025, 8, 1), date(2025, 9, 1), date(2025, 10, 1)
NOW = utc(2025, 10, 5)


def billed_kwh(account) -> Decimal:
    """Energy over every issued document of the account (invoices, corrections, credits)."""
    return InvoiceLine.objects.filter(
        invoice__account=account, invoice__status="issued", unit="kWh"
    ).aggregate(total=Sum("quantity"))["total"]


def billed_money(account) -> Decimal:
    return Invoice.objects.filter(account=account, status="issued").aggregate(total=Sum("total"))[
        "total"
    ]


def estimated_july(make_tariff, make_account, *, late_wh: int = 2000, bill_august: bool = True):
    """June and July at 1,000 Wh an hour, but no read after 29 July 00:00 local (28 July 23:00
    UTC) when July is billed: its last 72 hours are estimated from the profile (72 kWh), so July
    is billed 672 + 72 = 744 kWh. Then the reads arrive: those 72 hours used 2,000 Wh each (144
    kWh), so July really used 672 + 144 = 816 kWh; August uses 1,000 Wh an hour (744 kWh).
    August's invoice carries a correction of July, +72 kWh at 0.20 = +14.40."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    last = write_readings(meter, utc(2025, 6, 1), (58 * 24) - 1, wh0=0, per_hour=1000)
    july = services.issue_invoice(account, JUL, AUG, now=NOW, by="test")
    assert july.estimated
    assert july.lines.get(kind=LineKind.ENERGY).quantity == Decimal("744.000")
    late = write_readings(meter, utc(2025, 7, 29), 71, wh0=last + late_wh, per_hour=late_wh)
    write_readings(meter, utc(2025, 8, 1), 62 * 24, wh0=late + 1000, per_hour=1000)
    if not bill_august:
        return account, july, None
    august = services.issue_invoice(account, AUG, SEP, now=NOW, by="test")
    assert list(
        august.lines.filter(kind=LineKind.ADJUSTMENT).values_list("corrects", "quantity")
    ) == [(july.pk, Decimal("72.000"))]
    return account, july, august


def test_crediting_an_estimated_month_cancels_its_correction_on_the_next_invoice(
    make_tariff, make_account
):
    """July is credited and re-issued from the actual reads (816 kWh). The +72 kWh August
    carried for July must not stand beside it: over all documents the customer is billed
    816 + 744 = 1,560 kWh (312.00 at 0.20), not 1,632 (326.40)."""
    account, july, _ = estimated_july(make_tariff, make_account)
    note, replacement = services.issue_credit_note(
        july, actor="test", reason="meter read disputed", now=timezone.now()
    )
    assert replacement.lines.get(kind=LineKind.ENERGY).quantity == Decimal("816.000")
    assert billed_kwh(account) == Decimal("1560.000")
    assert billed_money(account) == Decimal("312.00")
    # The credit note cancels everything billed for July, August's correction included.
    assert note.total == Decimal("-163.20")
    # September finds nothing left to correct.
    september = services.issue_invoice(account, SEP, OCT, now=NOW, by="test")
    assert not september.lines.filter(kind=LineKind.ADJUSTMENT).exists()


def test_crediting_the_invoice_that_carried_a_correction_after_the_month_was_reissued(
    make_tariff, make_account
):
    """July re-issued at 816 kWh, then August credited without a re-bill: August's own 744 kWh
    is cancelled, and its +72 kWh for July, which July's credit note cancelled already, is not
    cancelled twice: July stays at 816 kWh and September has nothing of July to correct.
    Billed: July 816 + September 720 (30 days x 24 h)."""
    account, july, august = estimated_july(make_tariff, make_account)
    services.issue_credit_note(july, actor="test", reason="disputed", now=timezone.now())
    note, _ = services.issue_credit_note(
        august, actor="test", reason="wrong account", now=timezone.now(), rebill=False
    )
    assert note.total == Decimal("-148.80")  # 744 kWh at 0.20
    assert billed_kwh(account) == Decimal("816.000")
    september = services.issue_invoice(account, SEP, OCT, now=NOW, by="test")
    assert not september.lines.filter(kind=LineKind.ADJUSTMENT).exists()
    assert billed_kwh(account) == Decimal("816.000") + Decimal("720.000")


def test_crediting_a_month_and_then_the_invoice_that_corrected_it_cancels_the_correction_once(
    make_tariff, make_account
):
    """July credited without a re-bill (its 744 kWh and August's +72 kWh for July cancelled),
    then August credited too: August's own 744 kWh is cancelled, its +72 kWh for July not a
    second time. Nothing is billed for either month."""
    account, july, august = estimated_july(make_tariff, make_account)
    services.issue_credit_note(
        july, actor="test", reason="moved out", now=timezone.now(), rebill=False
    )
    services.issue_credit_note(
        august, actor="test", reason="moved out", now=timezone.now(), rebill=False
    )
    assert billed_kwh(account) == Decimal("0.000")
    assert billed_money(account) == Decimal("0.00")


def test_a_run_corrects_each_account_of_a_batch_with_its_own_readings(make_tariff, make_account):
    """Two accounts estimated alike for July; their last 72 hours really used 2,000 and 3,000 Wh
    an hour. August's run re-prices both in one batch: +72 kWh (14.40) and +144 kWh (28.80)."""
    first, first_july, _ = estimated_july(make_tariff, make_account, bill_august=False)
    second, second_july, _ = estimated_july(
        make_tariff, make_account, late_wh=3000, bill_august=False
    )
    run = services.run_billing(AUG, now=NOW, by="test")
    assert (run.invoices_issued, run.failed) == (2, 0)
    found = {
        invoice.account_id: list(
            invoice.lines.filter(kind=LineKind.ADJUSTMENT).values_list(
                "corrects", "quantity", "amount"
            )
        )
        for invoice in Invoice.objects.filter(run=run)
    }
    assert found == {
        first.pk: [(first_july.pk, Decimal("72.000"), Decimal("14.40"))],
        second.pk: [(second_july.pk, Decimal("144.000"), Decimal("28.80"))],
    }
