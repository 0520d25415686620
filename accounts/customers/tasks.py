"""Customer tasks. `send_claim_code` runs on the "sms" queue: sealing the code for the meter's
display needs the meter key, which only the SMS workers can unwrap. `send_email` delivers the
account e-mails the web request rendered, so no answer waits for the mail server. The work is
in `jobs`; the services that enqueue these import this module. Not at the app's top level, so
Celery's autodiscovery misses it: settings list it in CELERY_IMPORTS."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from accounts.models import MeterClaim

from . import jobs


@shared_task(name="accounts.send_claim_code")
def send_claim_code(*, claim_id: int) -> str:
    return jobs.send_claim_code(claim_id, now=timezone.now())


@shared_task(
    name="accounts.send_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def send_email(*, message: dict) -> None:
    jobs.deliver_email(message)


def send_claim_code_on_commit(claim: MeterClaim) -> None:
    """Have the claim's code sent once the transaction that recorded the claim commits."""
    transaction.on_commit(lambda: send_claim_code.delay(claim_id=claim.pk))


@shared_task(name="accounts.register_customer")
def register_customer(*, email: str, meter_number: str) -> str:
    return jobs.register_customer(
        email=email,
        meter_number=meter_number,
        now=timezone.now(),
        after_claim=send_claim_code_on_commit,
    )
