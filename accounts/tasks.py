"""Customer tasks. `send_claim_code` runs on the "sms" queue: sealing the code for the meter's
display needs the meter key, which only the SMS workers can unwrap."""

from celery import shared_task
from django.utils import timezone


@shared_task(name="accounts.send_claim_code")
def send_claim_code(*, claim_id: int) -> str:
    from .customer_services import send_claim_code as send

    return send(claim_id, now=timezone.now())
