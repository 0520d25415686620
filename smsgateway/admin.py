from django.contrib import admin

from .models import DeliveryReport, InboundMessage, OutboundMessage


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnly):
    list_display = ["pk", "received_at", "sender", "status", "reason", "meter", "key_id", "counter"]
    list_filter = ["status", "reason", "gateway"]
    search_fields = ["sender", "meter__number", "dedupe_key"]
    date_hierarchy = "received_at"
    exclude = ["payload", "udh"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnly):
    list_display = ["pk", "created_at", "msisdn", "kind", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["msisdn", "meter__number"]
    exclude = ["payload"]


@admin.register(DeliveryReport)
class DeliveryReportAdmin(ReadOnly):
    list_display = ["outbound", "status_code", "received_at"]
