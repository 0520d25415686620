from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="fraud.run_detectors")
def run_detectors() -> int:
    """The scheduled scan (beat); idempotent: a repeat refreshes the same cases."""
    return services.run_scan(now=timezone.now(), actor="beat").opened
