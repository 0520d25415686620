"""The one API every feature uses to write to the audit log."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from . import chain, context
from .models import AuditChainHead, AuditEvent, Outcome

logger = logging.getLogger("audit")


def _normalised_ip(value: str | None) -> str | None:
    """The form the database returns, so the sealed content reads back identically."""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return None


def record(
    action: str,
    *,
    actor: AbstractBaseUser | str | None = None,
    target: str = "",
    outcome: str = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one event to the chain and return it.

    `actor` is a user, or the name of a system component ("smsgateway", "beat") when no person
    acted. Written in its own atomic block under a lock on the chain head, so records form one
    unbroken sequence. Called inside a caller's transaction, the record shares its fate: record
    failures that must survive a rollback outside that transaction.
    """
    if outcome not in Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if source_ip is None:
        source_ip = context.current().source_ip
    source_ip = _normalised_ip(source_ip)
    if isinstance(actor, AbstractBaseUser):
        actor_user, actor_label = actor, actor.get_username()
    else:
        actor_user, actor_label = None, actor or "system"

    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            # The very first record: concurrent first records all insert, one row results.
            AuditChainHead.objects.bulk_create([AuditChainHead(pk=1)], ignore_conflicts=True)
            head = AuditChainHead.objects.select_for_update().get(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor=actor_user,
            actor_label=actor_label[:254],
            action=action[:64],
            target=target[:255],
            outcome=outcome,
            source_ip=source_ip,
            details=chain.normalise_details(details),
            prev_hash=head.hash,
        )
        event.hash = chain.seal(event)
        event.save(force_insert=True)
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
    logger.info(
        "audit #%s %s %s actor=%s target=%s",
        event.seq,
        action,
        outcome,
        actor_label,
        target,
    )
    return event
