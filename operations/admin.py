from django.contrib import admin, messages
from django.utils import timezone

from audit.services import record
from utility.readonly_admin import ReadOnlyModelAdmin

from .models import ACTIVE_RUN_STATES, DailyReadRate, RunStatus, StaffRun


@admin.register(StaffRun)
class StaffRunAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "kind", "status", "requested_by", "requested_at", "finished_at"]
    list_filter = ["kind", "status"]
    actions = ["mark_failed"]

    @admin.action(description="Mark as failed (its worker died; frees the next start)")
    def mark_failed(self, request, queryset):
        if not request.user.is_superuser:
            self.message_user(request, "Only a superuser may do this.", messages.ERROR)
            return
        for run in queryset.filter(status__in=ACTIVE_RUN_STATES):
            StaffRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                message="marked failed by staff",
            )
            record(
                "operations.run_marked_failed",
                actor=request.user,
                target=f"{run.kind}-run:{run.pk}",
            )


@admin.register(DailyReadRate)
class DailyReadRateAdmin(ReadOnlyModelAdmin):
    list_display = ["day", "complete_meters", "active_meters", "computed_at"]
