import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import alerts, drain, ingest, rekeys
from .models import OutboundStatus
from .outbox import sending

logger = logging.getLogger("smsgateway")


@shared_task(name="smsgateway.send_outbound")
def send_outbound(*, outbound_id: int) -> str:
    """Send one outbox message now. A failure is rescheduled in the row (backoff), and the
    `send_due` sweeper picks it up: retries survive a worker restart."""
    return sending.send(outbound_id, now=timezone.now())


@shared_task(name="smsgateway.send_outbound_many")
def send_outbound_many(*, outbound_ids: list[int]) -> int:
    """Send the acks one batch of inbound messages produced; failures are rescheduled in
    their rows like `send_outbound`'s."""
    return sum(
        sending.send(outbound_id, now=timezone.now()) == OutboundStatus.SENT
        for outbound_id in outbound_ids
    )


@shared_task(name="smsgateway.send_due")
def send_due() -> int:
    """Beat: send everything due (retries after backoff, and anything a lost task left)."""
    count = 0
    for outbound_id in sending.due_messages(now=timezone.now()):
        count += sending.send(outbound_id, now=timezone.now()) == OutboundStatus.SENT
    return count


@shared_task(name="smsgateway.flag_silent_meters")
def flag_silent_meters() -> int:
    return alerts.flag_silent_meters(now=timezone.now())


@shared_task(name="smsgateway.process_inbound", ignore_result=True)
def process_inbound() -> int:
    """Drain the stored inbound messages (queued by the webhook after it stored one). A long
    queue is worked through in several tasks, so other work interleaves and more workers can
    join; drains running at once skip each other's messages."""
    drained = drain.drain(limit=settings.SMS_DRAIN_BATCH)
    # Stopped at the limit: more may be waiting. (Unless nothing could be processed, which the
    # next sweep retries rather than a hot loop of tasks.)
    if drained.taken >= settings.SMS_DRAIN_BATCH and drained.processed:
        process_inbound.delay()
    return drained.processed


@shared_task(name="smsgateway.sweep_inbound")
def sweep_inbound() -> int:
    """Beat: drain whatever no queued drain took (a broker outage, a lost task), and expire
    concatenated parts whose siblings never came."""
    return process_inbound() + ingest.expire_parts(now=timezone.now())


@shared_task(name="smsgateway.send_rekey_inits")
def send_rekey_inits() -> int:
    """Beat: send due key agreements, and stall the rotations that ran out of attempts."""
    now = timezone.now()
    rekeys.stall_unanswered_rotations(now=now)
    return rekeys.send_rekey_inits(now=now)
