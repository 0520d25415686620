from django.contrib import admin

from .models import Case, ReadingsUpload, WorkOrder


class ReadOnlyAdmin(admin.ModelAdmin):
    """Cases and work orders change only through the audited services (the staff pages)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("pk", "meter", "cause", "severity", "state", "resolution", "opened_at")
    list_filter = ("state", "cause", "severity")
    search_fields = ("meter__number",)


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnlyAdmin):
    list_display = ("pk", "case", "engineer", "state", "created_at", "visited_at", "outcome")
    list_filter = ("state",)


@admin.register(ReadingsUpload)
class ReadingsUploadAdmin(ReadOnlyAdmin):
    list_display = ("pk", "meter", "uploaded_by", "uploaded_at", "readings", "conflicts")
