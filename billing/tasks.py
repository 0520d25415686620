from datetime import date
from zoneinfo import ZoneInfo

from celery import shared_task
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from . import services
from .conf import setting
from .models import BillingRun, RunStatus


@shared_task(name="billing.run_period")
def run_period(*, period_start: str, period_end: str) -> int:
    """Start or resume the run of one period on the workers (its chunks and final tally)."""
    run = services.start_billing_run(
        date.fromisoformat(period_start), date.fromisoformat(period_end), by="beat"
    )
    return run.pk


# A chunk that lost a race for an invoice (one issued by hand meanwhile) or its connection is
# taken again: it rolled back whole, and the retry skips the accounts invoiced since.
@shared_task(
    name="billing.bill_chunk",
    autoretry_for=(IntegrityError, OperationalError),
    retry_backoff=True,
    max_retries=5,
)
def bill_chunk(*, chunk_id: int, by: str) -> int:
    chunk = services.bill_chunk(chunk_id, now=timezone.now(), by=by)
    return chunk.invoices_issued


@shared_task(name="billing.finish_run")
def finish_run(_results=None, *, run_id: int, by: str) -> str:
    """The chord's callback once every chunk task returned: the run's final tally."""
    return services.finish_run(run_id, by=by).status


@shared_task(name="billing.start_due_runs")
def start_due_runs() -> list[str]:
    """Hourly from beat: queue the runs of the periods due today (local date) that are not yet
    completed, including a crashed one (it resumes)."""
    today = timezone.now().astimezone(ZoneInfo(setting("BILLING_TIME_ZONE"))).date()
    queued = []
    for start, end in services.due_periods(today):
        finished = BillingRun.objects.filter(
            period_start=start, period_end=end, status=RunStatus.COMPLETED
        ).exists()
        if not finished and services.accounts_for_period(start, end).exists():
            kwargs = {"period_start": start.isoformat(), "period_end": end.isoformat()}
            transaction.on_commit(lambda kw=kwargs: run_period.apply_async(kwargs=kw))
            queued.append(f"{start}/{end}")
    return queued
