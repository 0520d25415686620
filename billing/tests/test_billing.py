"""Acceptance tests against hand-computed invoices. Each docstring holds the sum.

Readings are cumulative registers at the top of each UTC hour; consumption of an hour is the
difference of two consecutive reads. Periods are local (Europe/London) dates, end exclusive.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import services
from billing.models import (
    Invoice,
    InvoiceKind,
    IssuedInvoiceError,
    LineKind,
    TariffKind,
)
from devices.models import MeterReplacement

from .conftest import utc, write_readings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)
NOW = utc(2025, 6, 1, 12)


def energy(invoice):
    return {
        line.band or line.key: (line.quantity, line.amount)
        for line in invoice.lines.filter(kind=LineKind.ENERGY)
    }


def test_flat_with_tax_rounded_half_even(make_tariff, make_account):
    """January 2025 (GMT = UTC): 744 hours x 500 Wh = 372.000 kWh.
    372 x 0.245430 = 91.29996 -> 91.30. Tax 5 %: 91.30 x 0.05 = 4.565 -> 4.56 (half-even;
    half-up would give 4.57). Total 95.86."""
    tariff = make_tariff(
        {"kind": TariffKind.FLAT, "unit_price": Decimal("0.245430"), "tax_rate": Decimal("0.05")}
    )
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=1_000_000, per_hour=500)
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    assert energy(invoice) == {
        f"v{tariff.versions.get().pk}:flat": (Decimal("372.000"), Decimal("91.30"))
    }
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("91.30"),
        Decimal("4.56"),
        Decimal("95.86"),
    )
    read = invoice.reads.get()
    # 2025-01-01 00:00 is 24 hours after the first read; 2025-02-01 is 768 hours after.
    assert (read.opening_wh, read.closing_wh) == (1_012_000, 1_384_000)
    assert not read.opening_estimated and not read.closing_estimated
    assert not invoice.estimated and invoice.number.startswith("INV-")


def test_time_of_use_spring_dst(make_tariff, make_account):
    """March 2025, Europe/London: clocks go forward on Sunday 30 March (23-hour day), so the
    month has 31 x 24 - 1 = 743 hours, from 2025-03-01 00:00 UTC to 2025-03-31 23:00 UTC.
    1 kWh every hour. Weekend days: 1 2 8 9 15 16 22 23 29 30 -> 9 x 24 + 23 = 239 kWh at 0.15
    = 35.85. Weekdays: 21; night (local 00-07) 21 x 7 = 147 kWh at 0.10 = 14.70; day 21 x 17 =
    357 kWh at 0.30 = 107.10. Total 157.65 (no standing charge, no tax). In UTC the bands of
    the BST days would be shifted an hour and the month would have 744 hours."""
    tariff = make_tariff(
        {
            "kind": TariffKind.TOU,
            "bands": [
                ("Night", "weekday", 0, 7, "0.10"),
                ("Day", "weekday", 7, 24, "0.30"),
                ("Weekend", "weekend", 0, 24, "0.15"),
            ],
        }
    )
    account, meter = make_account(tariff)
    write_readings(meter, utc(2025, 2, 28), 24 * 33, wh0=0, per_hour=1000)
    invoice = services.issue_invoice(account, MAR, date(2025, 4, 1), now=NOW, by="test")
    assert energy(invoice) == {
        "Weekend": (Decimal("239.000"), Decimal("35.85")),
        "Night": (Decimal("147.000"), Decimal("14.70")),
        "Day": (Decimal("357.000"), Decimal("107.10")),
    }
    assert invoice.total == Decimal("157.65")
    read = invoice.reads.get()
    assert read.opening_at == utc(2025, 3, 1, 0) and read.closing_at == utc(2025, 3, 31, 23)


def test_time_of_use_autumn_dst(make_tariff, make_account):
    """October 2025, Europe/London: clocks go back on Sunday 26 October (25-hour day: local
    01:00 happens twice). The month has 31 x 24 + 1 = 745 hours, from 2025-09-30 23:00 UTC to
    2025-11-01 00:00 UTC. 1 kWh every hour, bands every day: Night (local 00-07) 31 x 7 + 1 =
    218 kWh at 0.12 = 26.16; Day 31 x 17 = 527 kWh at 0.28 = 147.56. Total 173.72."""
    tariff = make_tariff(
        {
            "kind": TariffKind.TOU,
            "bands": [("Night", "all", 0, 7, "0.12"), ("Day", "all", 7, 24, "0.28")],
        }
    )
    account, meter = make_account(tariff)
    write_readings(meter, utc(2025, 9, 29), 24 * 34, wh0=5_000, per_hour=1000)
    invoice = services.issue_invoice(
        account, date(2025, 10, 1), date(2025, 11, 1), now=NOW, by="test"
    )
    assert energy(invoice) == {
        "Night": (Decimal("218.000"), Decimal("26.16")),
        "Day": (Decimal("527.000"), Decimal("147.56")),
    }
    assert invoice.total == Decimal("173.72")


def test_time_of_use_band_wrapping_midnight(make_tariff, make_account):
    """January 2025, bands Night 23-07 (wraps midnight) and Day 07-23, 1 kWh an hour:
    Night 31 x 8 = 248 kWh at 0.10 = 24.80; Day 31 x 16 = 496 kWh at 0.25 = 124.00."""
    tariff = make_tariff(
        {
            "kind": TariffKind.TOU,
            "bands": [("Night", "all", 23, 7, "0.10"), ("Day", "all", 7, 23, "0.25")],
        }
    )
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=1000)
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    assert energy(invoice) == {
        "Night": (Decimal("248.000"), Decimal("24.80")),
        "Day": (Decimal("496.000"), Decimal("124.00")),
    }


def test_tiered_blocks(make_tariff, make_account):
    """January: 372 kWh. Blocks: first 100 kWh at 0.10 = 10.00; up to 300 kWh (200 more) at
    0.20 = 40.00; above (72 kWh) at 0.30 = 21.60. Total 71.60."""
    tariff = make_tariff(
        {
            "kind": TariffKind.TIERED,
            "tiers": [("100", "0.10"), ("300", "0.20"), (None, "0.30")],
        }
    )
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    assert energy(invoice) == {
        "tier 1": (Decimal("100.000"), Decimal("10.00")),
        "tier 2": (Decimal("200.000"), Decimal("40.00")),
        "tier 3": (Decimal("72.000"), Decimal("21.60")),
    }
    assert invoice.total == Decimal("71.60")


def test_standing_charge_from_move_in(make_tariff, make_account):
    """Moved in on 11 January: supplied 21 days (11-31 Jan), 504 hours x 500 Wh = 252 kWh at
    0.20 = 50.40; standing charge 21 x 0.456750 = 9.59175 -> 9.59. Total 59.99. The reads
    before 11 January (the previous occupant's) are not billed."""
    tariff = make_tariff(
        {
            "kind": TariffKind.FLAT,
            "unit_price": Decimal("0.20"),
            "standing_charge_per_day": Decimal("0.456750"),
        }
    )
    account, meter = make_account(tariff, opened_on=date(2025, 1, 11))
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    standing = invoice.lines.get(kind=LineKind.STANDING)
    assert (standing.quantity, standing.amount) == (Decimal("21.000"), Decimal("9.59"))
    assert list(energy(invoice).values()) == [(Decimal("252.000"), Decimal("50.40"))]
    assert invoice.total == Decimal("59.99")


def test_mid_period_tariff_change_splits_the_period(make_tariff, make_account):
    """Price change on 16 January. 1-15 Jan: 15 days, 360 h x 0.5 kWh = 180 kWh at 0.20 =
    36.00, standing 15 x 0.50 = 7.50. 16-31 Jan: 16 days, 384 h = 192 kWh at 0.30 = 57.60,
    standing 16 x 0.60 = 9.60. Subtotal 110.70; tax 5 % on both = 5.535 -> 5.54 (half-even);
    total 116.24."""
    tariff = make_tariff(
        {
            "kind": TariffKind.FLAT,
            "unit_price": Decimal("0.20"),
            "standing_charge_per_day": Decimal("0.50"),
            "valid_to": date(2025, 1, 16),
            "tax_rate": Decimal("0.05"),
        },
        {
            "kind": TariffKind.FLAT,
            "unit_price": Decimal("0.30"),
            "standing_charge_per_day": Decimal("0.60"),
            "valid_from": date(2025, 1, 16),
            "tax_rate": Decimal("0.05"),
        },
    )
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    lines = [
        (line.kind, line.segment_start, line.segment_end, line.quantity, line.amount)
        for line in invoice.lines.order_by("kind", "segment_start")
    ]
    assert lines == [
        ("energy", JAN, date(2025, 1, 16), Decimal("180.000"), Decimal("36.00")),
        ("energy", date(2025, 1, 16), FEB, Decimal("192.000"), Decimal("57.60")),
        ("standing", JAN, date(2025, 1, 16), Decimal("15.000"), Decimal("7.50")),
        ("standing", date(2025, 1, 16), FEB, Decimal("16.000"), Decimal("9.60")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("110.70"),
        Decimal("5.54"),
        Decimal("116.24"),
    )


def test_meter_swap(make_tariff, make_account, make_meter):
    """Old meter: 1,000,000 Wh at 2025-01-01 00:00, +500 Wh/h, last read 15 Jan 10:00 =
    1,000,000 + 346 x 500 = 1,173,000; removed at 10:30 with final register 1,173,250.
    New meter: installed at 10:30 reading 0; reads 250 at 11:00, +500 Wh/h, so at 1 Feb 00:00
    (397 hours later) 250 + 397 x 500 = 198,750. Consumption: 173,250 + 198,750 = 372,000 Wh
    = 372 kWh (744 h x 500 Wh, nothing lost or doubled across the swap) at 0.20 = 74.40."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, old = make_account(tariff)
    new = make_meter()
    new.premises = account.premises
    new.save(update_fields=["premises"])
    write_readings(old, utc(2025, 1, 1), 346, wh0=1_000_000, per_hour=500)
    write_readings(new, utc(2025, 1, 15, 11), 397 + 24, wh0=250, per_hour=500)
    MeterReplacement.objects.create(
        old_meter=old,
        new_meter=new,
        premises=account.premises,
        replaced_at=utc(2025, 1, 15, 10, 30),
        old_final_wh=1_173_250,
        new_first_wh=0,
    )
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    assert list(energy(invoice).values()) == [(Decimal("372.000"), Decimal("74.40"))]
    reads = {r.meter_id: (r.opening_wh, r.closing_wh) for r in invoice.reads.all()}
    assert reads == {old.pk: (1_000_000, 1_173_250), new.pk: (0, 198_750)}
    assert not invoice.estimated


def test_gap_estimated_then_corrected_on_next_invoice(make_tariff, make_account):
    """History from 1 Dec 2024 at 500 Wh/h (the meter's profile: 500 Wh every local hour).
    January has three gaps: 10 Jan 01:00-03:00 missing (4-hour span: linear), all of 20 Jan
    01:00 - 20 Jan 23:00 missing (24-hour span: profile, scaled to the reads), and no read
    after 31 Jan 12:00 when January is billed (12 hours: profile, unscaled, 12 x 500 = 6,000).
    Invoice 1: 732 h x 500 = 366,000 actual-bounded + 6,000 estimated = 372 kWh at 0.20 =
    74.40, marked estimated; closing register estimated at 1,000,000 + 31 x 24 x 500 + ... .
    Then the reads arrive: the meter really used 1,000 Wh/h for those 12 hours (12,000), then
    500 Wh/h. Invoice 2 (February, 672 h x 500 = 336 kWh = 67.20) corrects January:
    378 - 372 = +6 kWh at 0.20 = +1.20. Invoice 2 total 68.40."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    start = utc(2024, 12, 1)
    gap = {utc(2025, 1, 10, h) for h in (1, 2, 3)} | {utc(2025, 1, 20, h) for h in range(1, 24)}
    last = write_readings(
        meter, start, 31 * 24 + 30 * 24 + 12, wh0=1_000_000, per_hour=500, skip=gap
    )
    first = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    assert list(energy(first).values()) == [(Decimal("372.000"), Decimal("74.40"))]
    assert first.estimated and first.lines.get(kind=LineKind.ENERGY).estimated
    read = first.reads.get()
    assert read.closing_estimated and read.closing_wh == last + 12 * 500
    # The late reads: 12 hours at 1,000 Wh, then February at 500 Wh/h.
    after = write_readings(meter, utc(2025, 1, 31, 13), 11, wh0=last + 1000, per_hour=1000)
    write_readings(meter, utc(2025, 2, 1, 1), 28 * 24 + 23, wh0=after + 500, per_hour=500)
    second = services.issue_invoice(account, FEB, MAR, now=NOW, by="test")
    adjustment = second.lines.get(kind=LineKind.ADJUSTMENT)
    assert (adjustment.quantity, adjustment.amount, adjustment.corrects_id) == (
        Decimal("6.000"),
        Decimal("1.20"),
        first.pk,
    )
    assert second.lines.get(kind=LineKind.ENERGY).quantity == Decimal("336.000")
    assert second.total == Decimal("68.40")
    opening = second.reads.get()
    assert not opening.opening_estimated and opening.opening_wh == last + 12_000
    # Nothing changes any more: a third invoice carries no further correction of January.
    march = after + 29 * 24 * 500 + 500  # 2 March 01:00
    write_readings(meter, utc(2025, 3, 2, 1), 31 * 24, wh0=march, per_hour=500)
    third = services.issue_invoice(account, MAR, date(2025, 4, 1), now=NOW, by="test")
    assert not third.lines.filter(kind=LineKind.ADJUSTMENT).exists()


def test_rerun_and_resume_never_double_bill(make_tariff, make_account):
    """Three accounts on cycle day 1, one on cycle day 15 (not in this run). One account is
    already invoiced (a run that crashed after it); the run bills the other two; running it
    again issues nothing."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    accounts = []
    for _ in range(3):
        account, meter = make_account(tariff)
        write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
        accounts.append(account)
    make_account(tariff, cycle_day=15)
    services.issue_invoice(accounts[0], JAN, FEB, now=NOW, by="crashed run")
    seen = []
    run = services.run_billing(
        JAN,
        now=NOW,
        by="test",
        batch_size=1,
        progress=lambda r, done, total: seen.append((done, total)),
    )
    assert (run.accounts_total, run.invoices_issued, run.failed) == (3, 2, 0)
    assert seen[-1] == (3, 3)
    assert Invoice.objects.filter(kind=InvoiceKind.INVOICE).count() == 3
    again = services.run_billing(JAN, FEB, now=NOW, by="test")
    assert again.pk == run.pk and again.attempts == 2 and again.invoices_issued == 2
    assert Invoice.objects.filter(kind=InvoiceKind.INVOICE).count() == 3
    # Even bypassing the run, the database refuses a second invoice for the period.
    with pytest.raises(IntegrityError), transaction.atomic():
        services.issue_invoice(accounts[1], JAN, FEB, now=NOW, by="test")


def test_issued_invoice_is_immutable_and_credit_note_reverses_it(make_tariff, make_account):
    """372 kWh at 0.20 = 74.40; the credit note is -74.40 and the re-bill 74.40 again."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    invoice = services.issue_invoice(account, JAN, FEB, now=NOW, by="test")
    invoice.total = Decimal("1.00")
    with pytest.raises(IssuedInvoiceError):
        invoice.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total=Decimal("1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        invoice.lines.update(amount=Decimal("0"))
    note, replacement = services.issue_credit_note(
        invoice, actor="test", reason="customer disputes", now=timezone.now()
    )
    assert note.kind == InvoiceKind.CREDIT_NOTE and note.total == Decimal("-74.40")
    assert note.credits_id == invoice.pk and replacement.replaces_id == invoice.pk
    assert replacement.total == Decimal("74.40")
    with pytest.raises(services.BillingError):
        services.issue_credit_note(invoice, actor="test", reason="again", now=timezone.now())


def test_due_periods_wait_for_late_readings(settings):
    settings.BILLING_RUN_DELAY_DAYS = 2
    # On 3 March the period ending 1 March is due (and the next two days' are checked too).
    assert services.due_periods(date(2025, 3, 3))[0] == (JAN + timedelta(days=31), MAR)


def test_beat_task_queues_due_run_and_bills(
    make_tariff, make_account, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """On local date 3 February the January period (cycle day 1) is due; the task queues it
    (on commit) and the run bills the account: 372 kWh at 0.20 = 74.40."""
    from billing import tasks

    settings.BILLING_RUN_DELAY_DAYS = 2
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    _, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    monkeypatch.setattr(tasks.timezone, "now", lambda: utc(2025, 2, 3, 9))
    with django_capture_on_commit_callbacks(execute=True):
        queued = tasks.start_due_runs()
    assert queued == ["2025-01-01/2025-02-01"]
    assert Invoice.objects.get().total == Decimal("74.40")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.start_due_runs() == []  # completed: nothing queued again
