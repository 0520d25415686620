"""Draining the stored inbound messages on the sms workers: batches take the common case
set-based (`batch`), and what a batch hands back goes through the one-message path
(`ingest.process`), one message per transaction, in arrival order."""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.keystore import KeyStoreLocked

from . import ingest
from .batch import process_batch
from .models import InboundMessage, InboundStatus

logger = logging.getLogger("smsgateway")


class Drained(NamedTuple):
    taken: int  # messages claimed
    processed: int  # of those, processed (the rest failed and stay waiting)


def drain(*, limit: int) -> Drained:
    """Process waiting messages, oldest first, until none is waiting or about `limit` were
    taken. Batches take the common case set-based
    (`batch.process_batch`); what a batch hands back is processed here one message per
    transaction, in arrival order. Concurrent drains skip each other's messages.

    A database error while claiming stops the drain (its messages stay waiting for the next
    one). A message whose own processing fails, whatever the error, is logged, left waiting
    and skipped for the rest of this drain, so one bad message cannot hold up the queue or
    keep a drain busy; the next drain (at the latest the beat sweep) tries it again."""
    taken = 0
    failed: set[int] = set()
    while taken < limit:
        claimed = process_batch(
            limit=min(settings.SMS_BATCH_SIZE, limit - taken), now=timezone.now(), skip=failed
        )
        taken += claimed.taken
        for message_id in claimed.handed_back:
            if not _process_one(message_id):
                failed.add(message_id)
        if claimed.taken == 0:
            break
    return Drained(taken, taken - len(failed))


def _process_one(message_id: int) -> bool:
    """Process one waiting message in its own transaction; False if that failed."""
    try:
        with transaction.atomic():
            message = (
                InboundMessage.objects.select_for_update(skip_locked=True)
                .filter(pk=message_id, status=InboundStatus.RECEIVED)
                .first()
            )
            if message is not None:  # else another drain has it, or has done it
                ingest.process(message, now=timezone.now())
    except KeyStoreLocked:
        raise  # this process was not given the private KEK: nothing can be processed
    except Exception:
        logger.exception("processing inbound SMS #%s failed; left waiting", message_id)
        return False
    return True
