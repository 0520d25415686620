from django.contrib import admin

from utility.readonly_admin import ReadOnlyModelAdmin

from .models import DeliveryReport, InboundMessage, OutboundMessage


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "received_at", "sender", "status", "reason", "meter", "key_id", "counter"]
    list_filter = ["status", "reason", "gateway"]
    search_fields = ["sender", "meter__number", "dedupe_key"]
    date_hierarchy = "received_at"
    exclude = ["payload", "udh"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "created_at", "msisdn", "kind", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["msisdn", "meter__number"]
    exclude = ["payload"]


@admin.register(DeliveryReport)
class DeliveryReportAdmin(ReadOnlyModelAdmin):
    list_display = ["outbound", "status_code", "received_at"]
