"""Admin changes are audit events from day one."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db.models.signals import post_save
from django.dispatch import receiver

from . import services

_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_admin_log_entry")
def audit_admin_change(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    if not created:
        return
    content_type = instance.content_type
    model = f"{content_type.app_label}.{content_type.model}" if content_type else "?"
    services.record(
        _ACTIONS.get(instance.action_flag, "admin.other"),
        actor=instance.user,
        target=f"{model}:{instance.object_id} {instance.object_repr}",
        details={"change": instance.get_change_message()},
    )
