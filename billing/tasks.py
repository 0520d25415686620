from datetime import date

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import services
from .models import BillingRun, RunStatus


@shared_task(name="billing.run_period")
def run_period(*, period_start: str, period_end: str) -> int:
    """Bill one period; safe to run again (it resumes and never bills an account twice)."""
    run = services.run_billing(
        date.fromisoformat(period_start),
        date.fromisoformat(period_end),
        now=timezone.now(),
        by="beat",
    )
    return run.pk


@shared_task(name="billing.start_due_runs")
def start_due_runs() -> list[str]:
    """Hourly from beat: queue the runs of the periods due today (local date) that are not yet
    completed, including a crashed one (it resumes)."""
    from zoneinfo import ZoneInfo

    today = timezone.now().astimezone(ZoneInfo(settings.BILLING_TIME_ZONE)).date()
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
