from celery import shared_task

from .partitions import ensure_partitions


@shared_task(name="readings.ensure_partitions")
def ensure_partitions_task() -> list[str]:
    """Daily: keep the coming months' partitions of the readings table created."""
    return ensure_partitions()
