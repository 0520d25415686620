"""Customer tasks. `send_claim_code` runs on the "sms" queue: sealing the code for the meter's
display needs the meter key, which only the SMS workers can unwrap. `send_email` delivers the
account e-mails the web request rendered, so no answer waits for the mail server."""

from celery import shared_task
from django.utils import timezone


@shared_task(name="accounts.send_claim_code")
def send_claim_code(*, claim_id: int) -> str:
    from .customer_services import send_claim_code as send

    return send(claim_id, now=timezone.now())


@shared_task(
    name="accounts.send_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5
)
def send_email(*, message: dict) -> None:
    from .customer_services import deliver_email

    deliver_email(message)


@shared_task(name="accounts.register_customer")
def register_customer(*, email: str, meter_number: str) -> str:
    from .customer_services import register_customer as register

    return register(email=email, meter_number=meter_number, now=timezone.now())
