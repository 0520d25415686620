from django.contrib import admin, messages
from django.utils import timezone

from audit.caps import CapExceeded
from utility.readonly_admin import ReadOnlyModelAdmin

from .models import DeliveryReport, InboundMessage, InboundStatus, OutboundMessage, RejectReason
from .outbox import sending


class RejectReasonFilter(admin.SimpleListFilter):
    """Rejected messages by reason. Only a rejection has one, and the index on reasons holds
    rejected messages alone: filtering on the reason by itself would read the whole table."""

    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return RejectReason.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(status=InboundStatus.REJECTED, reason=self.value())
        return queryset


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "received_at", "sender", "status", "reason", "meter", "key_id", "counter"]
    list_filter = ["status", RejectReasonFilter, "gateway"]
    search_fields = ["sender", "meter__number", "dedupe_key"]
    date_hierarchy = "received_at"
    exclude = ["payload", "udh"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "created_at", "msisdn", "kind", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["msisdn", "meter__number"]
    exclude = ["payload"]
    actions = ["send_again"]

    def has_send_again_permission(self, request) -> bool:
        return request.user.has_perm("smsgateway.send_again")

    @admin.action(description="Send failed messages again", permissions=["send_again"])
    def send_again(self, request, queryset):
        try:
            count = sending.send_again(queryset, by=request.user, now=timezone.now())
        except (sending.SendAgainRefused, CapExceeded) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"{count} messages queued to send again.", messages.SUCCESS)


@admin.register(DeliveryReport)
class DeliveryReportAdmin(ReadOnlyModelAdmin):
    list_display = ["outbound", "status_code", "received_at"]
