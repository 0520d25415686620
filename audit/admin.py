from django.contrib import admin

from utility.readonly_admin import ReadOnlyModelAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """Read-only for everyone: the log is written only through audit.services.record."""

    list_display = ["seq", "created_at", "action", "outcome", "actor_label", "target", "source_ip"]
    list_filter = ["outcome", "action"]
    search_fields = ["actor_label", "target", "action"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
