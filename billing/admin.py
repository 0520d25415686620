from django.contrib import admin

from audit.services import record
from utility.readonly_admin import ReadOnlyModelAdmin

from .models import BillingAccount, BillingRun, Invoice, Tariff, TariffVersion, TierBlock, TouBand


class TouBandInline(admin.TabularInline):
    model = TouBand
    extra = 0


class TierBlockInline(admin.TabularInline):
    model = TierBlock
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
