from celery import shared_task
from django.utils import timezone

from . import runs


@shared_task(name="operations.execute_run", acks_late=True)
def execute_run(*, run_id: int) -> str:
    """A billing run or scan started from the staff pages."""
    return runs.execute_run(run_id).status


@shared_task(name="operations.count_read_rates")
def count_read_rates() -> int:
    """Hourly from beat: the read success rate of days not yet counted, and of yesterday."""
    return len(runs.count_read_rates(now=timezone.now()))
