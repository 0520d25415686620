from django.contrib import admin

from utility.readonly_admin import ReadOnlyModelAdmin

from .models import Absence, Case, ReadingsUpload, WorkOrder


@admin.register(Case)
class CaseAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "meter", "cause", "severity", "state", "resolution", "opened_at")
    list_filter = ("state", "cause", "severity")
    search_fields = ("meter__number",)


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "case", "engineer", "state", "created_at", "visited_at", "outcome")
    list_filter = ("state",)


@admin.register(ReadingsUpload)
class ReadingsUploadAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "meter", "uploaded_by", "uploaded_at", "readings", "conflicts")


@admin.register(Absence)
class AbsenceAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "meter", "first_day", "last_day", "declared_by", "declared_at")
    search_fields = ("meter__number",)
