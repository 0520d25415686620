"""Tariffs, billing accounts, billing runs and invoices.

Money is `Decimal` everywhere: prices with 6 decimal places per unit, amounts with the currency's
minor unit (2 places). An invoice is immutable once issued; a database trigger refuses any
change to an issued invoice or its lines (migration 0002), and `Invoice.save` refuses it too.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from .conf import setting

PRICE = {"max_digits": 12, "decimal_places": 6}  # per kWh or per day
MONEY = {"max_digits": 14, "decimal_places": 2}
RATE = {"max_digits": 6, "decimal_places": 4}  # tax rate, 0.2000 = 20 %


def default_currency() -> str:
    return setting("BILLING_CURRENCY")


class Tariff(models.Model):
    """A product customers are on; its prices live in dated versions."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=120)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class TariffKind(models.TextChoices):
    FLAT = "flat", "Flat price per kWh"
    TOU = "tou", "Time of use bands"
    TIERED = "tiered", "Tiered blocks"


class TariffVersion(models.Model):
    """The prices of a tariff from `valid_from` (inclusive) to `valid_to` (exclusive, open if
    empty), in the utility's local dates. A change mid-period splits the invoice."""

    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="versions")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    kind = models.CharField(max_length=8, choices=TariffKind.choices, default=TariffKind.FLAT)
    unit_price = models.DecimalField(
        **PRICE, null=True, blank=True, help_text="Per kWh; flat tariffs only."
    )
    standing_charge_per_day = models.DecimalField(**PRICE, default=Decimal("0"))
    tax_rate = models.DecimalField(
        **RATE, default=Decimal("0"), validators=[MinValueValidator(0), MaxValueValidator(1)]
    )

    class Meta:
        ordering = ["tariff", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["tariff", "valid_from"], name="billing_version_once"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")),
                name="billing_version_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff.code} from {self.valid_from}"

    def clean(self) -> None:
        if self.kind == TariffKind.FLAT and self.unit_price is None:
            raise ValidationError({"unit_price": "A flat tariff needs a unit price."})


class DayType(models.TextChoices):
    ALL = "all", "Every day"
    WEEKDAY = "weekday", "Monday to Friday"
    WEEKEND = "weekend", "Saturday and Sunday"


class TouBand(models.Model):
    """A time-of-use band: local hours [start_hour, end_hour) on the given days. A band that
    wraps midnight has start_hour > end_hour (23 -> 7)."""

    version = models.ForeignKey(TariffVersion, on_delete=models.CASCADE, related_name="bands")
    name = models.CharField(max_length=40)
    day_type = models.CharField(max_length=8, choices=DayType.choices, default=DayType.ALL)
    start_hour = models.PositiveSmallIntegerField(validators=[MaxValueValidator(23)])
    end_hour = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(24)]
    )
    unit_price = models.DecimalField(**PRICE)

    class Meta:
        ordering = ["version", "day_type", "start_hour"]

    def __str__(self) -> str:
        return f"{self.name} {self.day_type} {self.start_hour:02d}-{self.end_hour:02d}"


class TierBlock(models.Model):
    """A tiered block: the first `up_to_kwh` of a full billing period at this price (pro rata for
    part periods); the last block has no upper bound."""

    version = models.ForeignKey(TariffVersion, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField()
    up_to_kwh = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    unit_price = models.DecimalField(**PRICE)

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="billing_tier_once")
        ]

    def __str__(self) -> str:
        return f"tier {self.position} up to {self.up_to_kwh or '∞'} kWh"


class BillingAccount(models.Model):
    """A customer's supply at a premises from `opened_on` (move-in) to `closed_on` (move-out,
    exclusive). The meters are those of the premises over time, including swaps."""

    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="billing_accounts"
    )
    premises = models.ForeignKey(
        "devices.Premises", on_delete=models.PROTECT, related_name="billing_accounts"
    )
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="accounts")
    opened_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)
    # 1-28 so that every month has the day.
    cycle_day = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(28)]
    )
    currency = models.CharField(max_length=3, default=default_currency)

    class Meta:
        indexes = [models.Index(fields=["cycle_day"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(cycle_day__gte=1, cycle_day__lte=28), name="billing_cycle_day_range"
            ),
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | Q(closed_on__gt=F("opened_on")),
                name="billing_account_dates",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        """Refuse a second account supplying the same premises on the same days: both would
        be billed for the premises' meters (the whole consumption twice)."""
        if self.premises_id is None or self.opened_on is None:
            return
        if self.closed_on is not None and self.closed_on <= self.opened_on:
            raise ValidationError({"closed_on": "The move-out date must be after the move-in."})
        others = BillingAccount.objects.filter(premises_id=self.premises_id).filter(
            Q(closed_on__isnull=True) | Q(closed_on__gt=self.opened_on)
        )
        if self.closed_on is not None:
            others = others.filter(opened_on__lt=self.closed_on)
        if self.pk is not None:
            others = others.exclude(pk=self.pk)
        clash = others.order_by("opened_on").first()
        if clash is not None:
            until = clash.closed_on or "open"
            raise ValidationError(
                f"Premises already supplied by account {clash.number} "
                f"({clash.opened_on} - {until}); close it before this one opens."
            )


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "errors", "Completed with errors"


class BillingRun(models.Model):
    """The run for one billing period (the accounts whose cycle day starts it)."""

    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=254)
    attempts = models.PositiveIntegerField(default=0)
    accounts_total = models.PositiveIntegerField(default=0)
    invoices_issued = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-period_start"]
        permissions = [("start_run", "Can start billing runs")]
        constraints = [
            models.UniqueConstraint(fields=["period_start", "period_end"], name="billing_run_once")
        ]

    def __str__(self) -> str:
        return f"run {self.period_start} - {self.period_end}"


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class BillingChunk(models.Model):
    """A slice of a run's accounts (ids first..last, by primary key) that one worker bills in
    one transaction: done with all its invoices, or not at all."""

    run = models.ForeignKey(BillingRun, on_delete=models.PROTECT, related_name="chunks")
    number = models.PositiveIntegerField()
    first_account_id = models.BigIntegerField()
    last_account_id = models.BigIntegerField()
    accounts = models.PositiveIntegerField()
    status = models.CharField(
        max_length=8, choices=ChunkStatus.choices, default=ChunkStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    invoices_issued = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="billing_chunk_once"),
            models.CheckConstraint(
                condition=Q(last_account_id__gte=F("first_account_id")),
                name="billing_chunk_range",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} chunk {self.number}"


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit", "Credit note"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"


class IssuedInvoiceError(Exception):
    """An issued invoice cannot change; correct it with a credit note."""


class Invoice(models.Model):
    number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    kind = models.CharField(max_length=8, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    status = models.CharField(
        max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="invoices")
    run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**MONEY, default=Decimal("0"))
    tax = models.DecimalField(**MONEY, default=Decimal("0"))
    total = models.DecimalField(**MONEY, default=Decimal("0"))
    estimated = models.BooleanField(default=False, help_text="Some consumption is estimated.")
    credits = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    # A re-bill after a credit note: the invoice it replaces for the same period.
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    reason = models.TextField(blank=True)
    created_by = models.CharField(max_length=254)
    created_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        permissions = [("issue_credit_note", "Can issue credit notes")]
        constraints = [
            # The guarantee against double billing: one invoice per account and period.
            models.UniqueConstraint(
                fields=["account", "period_start", "period_end"],
                condition=Q(kind="invoice", replaces__isnull=True),
                name="billing_one_invoice_per_period",
            ),
            models.UniqueConstraint(
                fields=["credits"], condition=Q(kind="credit"), name="billing_one_credit_note"
            ),
        ]
        indexes = [models.Index(fields=["account", "-period_start"])]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            stored = Invoice.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored == InvoiceStatus.ISSUED:
                raise IssuedInvoiceError(f"invoice {self.number} is issued and cannot change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.status == InvoiceStatus.ISSUED:
            raise IssuedInvoiceError(f"invoice {self.number} is issued and cannot be deleted")
        return super().delete(*args, **kwargs)


class MeterRead(models.Model):
    """The opening and closing register of one meter on an invoice (actual or estimated)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reads")
    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    opening_at = models.DateTimeField()
    opening_wh = models.BigIntegerField(null=True)
    opening_estimated = models.BooleanField()
    closing_at = models.DateTimeField()
    closing_wh = models.BigIntegerField(null=True)
    closing_estimated = models.BooleanField()

    class Meta:
        ordering = ["invoice", "opening_at"]

    def __str__(self) -> str:
        return f"{self.meter_id}: {self.opening_wh} -> {self.closing_wh} Wh"


class LineKind(models.TextChoices):
    ENERGY = "energy", "Energy"
    STANDING = "standing", "Standing charge"
    ADJUSTMENT = "adjustment", "Correction of an earlier estimate"
    CREDIT = "credit", "Credit"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=LineKind.choices)
    description = models.CharField(max_length=200)
    # Which price the line uses ("v12:band:Day", "v12:tier:1", "v12:flat"): matches a line and
    # its later corrections.
    key = models.CharField(max_length=60, blank=True)
    band = models.CharField(max_length=40, blank=True)
    segment_start = models.DateField()
    segment_end = models.DateField()
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit = models.CharField(max_length=8)
    unit_price = models.DecimalField(**PRICE)
    amount = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(**RATE)
    estimated = models.BooleanField(default=False)
    corrects = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="corrected_by"
    )

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="billing_line_once")
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"
