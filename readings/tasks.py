from celery import shared_task
from django.utils import timezone

from .partitions import ensure_partitions
from .retention import Policy, apply_retention


@shared_task(name="readings.ensure_partitions")
def ensure_partitions_task() -> list[str]:
    """Daily: keep the coming months' partitions of the readings table created (never one the
    retention policy has dropped)."""
    return ensure_partitions(not_before=Policy.from_settings().first_kept_month(timezone.now()))


@shared_task(name="readings.apply_retention")
def apply_retention_task() -> int:
    """Daily: aggregate, delete and drop what the retention policy no longer keeps."""
    return len(apply_retention(now=timezone.now()))
