from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from audit.services import record
from utility.readonly_admin import ReadOnlyModelAdmin

from .models import (
    BillingAccount,
    BillingChunk,
    BillingRun,
    Invoice,
    Tariff,
    TariffKind,
    TariffVersion,
    TierBlock,
    TouBand,
)
from .rating import BillingError, check_tiers, check_tou_bands


class _VersionChildFormSet(BaseInlineFormSet):
    """Validates the version's bands or blocks as a whole, as the billing run will."""

    kind: str = ""

    def rows(self) -> list[dict]:
        return [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not self._should_delete_form(form)
        ]

    def check(self, rows: list[dict], label: str) -> None:
        raise NotImplementedError

    def clean(self) -> None:
        super().clean()
        if any(self.errors) or self.instance.kind != self.kind:
            return
        label = f"{self.instance.pk}" if self.instance.pk else str(self.instance.valid_from)
        try:
            self.check(self.rows(), label)
        except BillingError as exc:
            raise ValidationError(str(exc)) from exc


class TouBandFormSet(_VersionChildFormSet):
    kind = TariffKind.TOU

    def check(self, rows, label):
        check_tou_bands(
            [(r["name"], r["day_type"], r["start_hour"], r["end_hour"]) for r in rows], label
        )


class TierBlockFormSet(_VersionChildFormSet):
    kind = TariffKind.TIERED

    def check(self, rows, label):
        check_tiers([(r["position"], r["up_to_kwh"]) for r in rows], label)


class TouBandInline(admin.TabularInline):
    model = TouBand
    formset = TouBandFormSet
    extra = 0


class TierBlockInline(admin.TabularInline):
    model = TierBlock
    formset = TierBlockFormSet
    extra = 0


@admin.register(TariffVersion)
class TariffVersionAdmin(admin.ModelAdmin):
    list_display = ["tariff", "valid_from", "valid_to", "kind", "unit_price", "tax_rate"]
    list_filter = ["kind", "tariff"]
    inlines = [TouBandInline, TierBlockInline]


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "premises", "tariff", "opened_on", "closed_on"]
    search_fields = ["number", "customer__email", "premises__reference"]
    list_filter = ["cycle_day", "tariff"]
    raw_id_fields = ["customer", "premises"]


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyModelAdmin):
    list_display = ["period_start", "period_end", "status", "invoices_issued", "failed"]


@admin.register(BillingChunk)
class BillingChunkAdmin(ReadOnlyModelAdmin):
    list_display = ["run", "number", "status", "accounts", "invoices_issued", "failed", "attempts"]
    list_filter = ["status"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyModelAdmin):
    """Read-only: an issued invoice is corrected by a credit note (staff invoice page)."""

    list_display = ["number", "kind", "account", "period_start", "period_end", "total"]
    search_fields = ["number", "account__number", "account__customer__email"]
    list_filter = ["kind", "status"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record(
            "billing.invoice_viewed",
            actor=request.user,
            target=f"invoice-id:{object_id}",
            details={"via": "admin"},
        )
        return super().change_view(request, object_id, form_url, extra_context)
