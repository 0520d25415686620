import logging

from celery import shared_task
from django.utils import timezone

from . import alerts, outbox
from .models import OutboundStatus

logger = logging.getLogger("smsgateway")


@shared_task(name="smsgateway.send_outbound")
def send_outbound(*, outbound_id: int) -> str:
    """Send one outbox message now. A failure is rescheduled in the row (backoff), and the
    `send_due` sweeper picks it up: retries survive a worker restart."""
    return outbox.send(outbound_id, now=timezone.now())


@shared_task(name="smsgateway.send_due")
def send_due() -> int:
    """Beat: send everything due (retries after backoff, and anything a lost task left)."""
    count = 0
    for outbound_id in outbox.due_messages(now=timezone.now()):
        count += outbox.send(outbound_id, now=timezone.now()) == OutboundStatus.SENT
    return count


@shared_task(name="smsgateway.flag_silent_meters")
def flag_silent_meters() -> int:
    return alerts.flag_silent_meters(now=timezone.now())


@shared_task(name="smsgateway.reprocess_stuck")
def reprocess_stuck() -> int:
    """Beat: messages stored raw whose processing failed (database down mid-request) and that
    the gateway did not retry are processed again."""
    from datetime import timedelta

    from .ingest import expire_parts, process
    from .models import InboundMessage, InboundStatus

    now = timezone.now()
    stuck = InboundMessage.objects.filter(
        status=InboundStatus.RECEIVED, received_at__lt=now - timedelta(minutes=5)
    ).order_by("pk")[:500]
    done = 0
    for message in stuck:
        try:
            process(message, now=now)
            done += 1
        except Exception:  # one bad message must not hold up the rest; it stays RECEIVED
            logger.exception("reprocessing inbound SMS #%s failed", message.pk)
    return done + expire_parts(now=now)


@shared_task(name="smsgateway.send_rekey_inits")
def send_rekey_inits() -> int:
    from .rekeys import send_rekey_inits as send

    return send(now=timezone.now())
