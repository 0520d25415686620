"""Sending what the outbox holds, with retries and backoff.

The send tasks are queued by name: `smsgateway.tasks` sits above the outbox (it drives ingest,
which queues acks here), so importing it here would make an import cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction

from audit.caps import capped
from audit.models import Outcome
from audit.services import record

from ..backends import SendError, get_backend
from ..models import OutboundMessage, OutboundStatus

logger = logging.getLogger("smsgateway")

SEND_ONE = "smsgateway.send_outbound"
SEND_MANY = "smsgateway.send_outbound_many"


def send_on_commit(outbound_ids: list[int]) -> None:
    """Queue the sending of these outbox rows once the current transaction commits."""
    if len(outbound_ids) == 1:
        (outbound_id,) = outbound_ids
        transaction.on_commit(
            lambda: current_app.signature(SEND_ONE, kwargs={"outbound_id": outbound_id}).delay()
        )
    elif outbound_ids:
        transaction.on_commit(
            lambda: current_app.signature(SEND_MANY, kwargs={"outbound_ids": outbound_ids}).delay()
        )


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at an hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def send(outbound_id: int, *, now: datetime) -> str:
    """Send one outbox message if it is due. Returns its status afterwards.

    The row is claimed first (under lock, skipping rows another sender holds) by pushing its
    next attempt out by the backoff, and committed; the network call happens outside any
    transaction. A sender that dies mid-send leaves the claim to expire, and the sweeper sends
    again: at least once, and a duplicate frame is rejected by the meter's replay window.
    """
    with transaction.atomic():
        outbound = (
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=outbound_id, status=OutboundStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if outbound is None:
            return "not due"
        outbound.attempts += 1
        outbound.next_attempt_at = now + backoff(outbound.attempts)
        outbound.save(update_fields=["attempts", "next_attempt_at"])

    try:
        reference = get_backend().send(
            to=outbound.msisdn, payload=bytes(outbound.payload), reference=outbound.pk
        )
    except SendError as exc:
        outbound.last_error = str(exc)[:255]
        if exc.permanent or outbound.attempts >= settings.SMS_MAX_ATTEMPTS:
            outbound.status = OutboundStatus.FAILED
            record(
                "sms.send_failed",
                actor="smsgateway",
                target=f"outbound:{outbound.pk} to {outbound.msisdn}",
                outcome=Outcome.FAILURE,
                details={"error": outbound.last_error, "attempts": outbound.attempts},
            )
        logger.warning("sending outbound #%s failed: %s", outbound.pk, exc)
    else:
        outbound.gateway_ref, outbound.status, outbound.sent_at = (
            reference,
            OutboundStatus.SENT,
            now,
        )
    OutboundMessage.objects.filter(pk=outbound.pk, status=OutboundStatus.PENDING).update(
        status=outbound.status,
        sent_at=outbound.sent_at,
        gateway_ref=outbound.gateway_ref,
        last_error=outbound.last_error,
    )
    return outbound.status


class SendAgainRefused(Exception):
    """A message chosen to be sent again is not a failed one."""


def send_again(messages: Iterable[OutboundMessage], *, by, now: datetime) -> int:
    """Staff send failed messages again (the gateway was down longer than the retries last):
    each goes back in the queue with fresh attempts. Audited and capped like other mass
    operations; a request that includes anything but failed messages is refused whole."""
    messages = list(messages)
    with capped("sms.sent_again", requested=len(messages), actor=by):
        rows = OutboundMessage.objects.select_for_update().filter(pk__in=[m.pk for m in messages])
        for outbound in rows.order_by("pk"):
            if outbound.status != OutboundStatus.FAILED:
                raise SendAgainRefused(
                    f"message #{outbound.pk} is {outbound.get_status_display().lower()}; "
                    "only failed messages are sent again"
                )
            outbound.status, outbound.attempts = OutboundStatus.PENDING, 0
            outbound.next_attempt_at, outbound.last_error = now, ""
            outbound.save(update_fields=["status", "attempts", "next_attempt_at", "last_error"])
            record(
                "sms.sent_again",
                actor=by,
                target=f"outbound:{outbound.pk} to {outbound.msisdn}",
                details={"kind": outbound.kind},
            )
    send_on_commit([m.pk for m in messages])
    return len(messages)


def due_messages(*, now: datetime, limit: int = 1000) -> list[int]:
    return list(
        OutboundMessage.objects.filter(status=OutboundStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
