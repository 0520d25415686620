"""What the customer tasks do on the workers: send a claim's code to the meter's display, make
an account for a sign-up, deliver an account e-mail. `tasks` calls these; nothing here
imports the tasks, so a follow-up task is enqueued by the caller (`after_claim`)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction

from accounts.conf import setting
from accounts.models import ClaimStatus, MeterClaim, User
from accounts.selectors import users_with_email
from audit.caps import check_cap
from audit.models import AuditEvent, Outcome
from audit.services import record
from devices.models import Meter

from .claims import CLAIMABLE_STATUSES, code_hash, open_claim

logger = logging.getLogger(__name__)


def _undeliverable(claim: MeterClaim, outcome: Outcome, reason: str) -> None:
    """The claim gets no code: marked so, and audited with the reason."""
    claim.status = ClaimStatus.UNDELIVERABLE
    claim.save(update_fields=["status"])
    record(
        "customer.claim_code_not_sent",
        actor="accounts",
        target=f"meter:{claim.meter_number}",
        outcome=outcome,
        details={"claim": claim.pk, "reason": reason},
    )


def send_claim_code(claim_id: int, *, now: datetime) -> str:
    """Generate the code, keep its hash, and queue it to the meter's display. Idempotent: a
    claim gets at most one code. Returns what happened (for the task log only)."""
    # Imported here, not at the top: the web process imports this module through the tasks it
    # enqueues, and must never load the meter-key store that sealing the code needs; this job
    # runs only on the sms workers (an ignored import in .importlinter says the same).
    from smsgateway.acks import queue_display_code

    with transaction.atomic():
        claim = MeterClaim.objects.select_for_update().filter(pk=claim_id).first()
        if claim is None or claim.status != ClaimStatus.REQUESTED:
            return "skipped"
        meter = (
            Meter.objects.select_related("sim")
            .filter(number=claim.meter_number, status__in=CLAIMABLE_STATUSES)
            .first()
        )
        if meter is None or claim.expires_at <= now:
            _undeliverable(claim, Outcome.FAILURE, "no claimable meter")
            return "no meter"
        # Fleet-wide (S12); the cap's lock, held until this transaction ends, also serialises
        # the per-meter count below.
        if check_cap("accounts.claim_code_sent", actor="accounts") is not None:
            claim.status = ClaimStatus.UNDELIVERABLE
            claim.save(update_fields=["status"])
            return "capped"
        # Per meter too: each code is an SMS to that meter, and its daily SMS budget must stay
        # free for the acks of its readings (S12); strangers asking for codes must not use it up.
        sent_today = AuditEvent.objects.filter(
            action="accounts.claim_code_sent",
            target=f"meter:{meter.number}",
            created_at__gte=now - timedelta(days=1),
        ).count()
        if sent_today >= setting("CLAIM_CODES_PER_METER_PER_DAY"):
            _undeliverable(claim, Outcome.DENIED, "daily codes for this meter used up")
            return "meter limit"
        digits = setting("CLAIM_CODE_DIGITS")
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        try:
            queue_display_code(meter, code, now=now)
        except ValueError:
            logger.warning("claim %s: meter %s has no usable key", claim.pk, meter.number)
            claim.status = ClaimStatus.UNDELIVERABLE
            claim.save(update_fields=["status"])
            return "no key"
        claim.meter = meter
        claim.code_hash = code_hash(claim.pk, code)
        claim.status = ClaimStatus.SENT
        claim.expires_at = now + timedelta(minutes=setting("CLAIM_CODE_TTL_MINUTES"))
        claim.save(update_fields=["meter", "code_hash", "status", "expires_at"])
        record(
            "accounts.claim_code_sent",
            actor="accounts",
            target=f"meter:{meter.number}",
            details={"claim": claim.pk, "user": claim.user_id},
        )
        return "sent"


def register_customer(
    *, email: str, meter_number: str, now: datetime, after_claim: Callable[[MeterClaim], None]
) -> str:
    """Make a customer account for `email` (no password yet: it is set after the meter code),
    ask for the meter's code, and mail the confirmation link; or, if the address has an
    account, mail it that it has one. A concurrent sign-up for the same address that commits
    first makes this one the second kind. `after_claim` gets the new claim inside the
    transaction (the task has its code sent on commit). Returns what happened (for the task log)."""
    from allauth.account.models import EmailAddress
    from allauth.account.utils import get_adapter

    address = None
    if not users_with_email(email).exists():
        try:
            with transaction.atomic():
                user = User.objects.create_user(email, None)
                address = EmailAddress.objects.create(
                    user=user, email=email, primary=True, verified=False
                )
                after_claim(open_claim(user, meter_number, now=now))
        except IntegrityError:
            address = None  # the address was taken meanwhile
        except ValidationError:
            # The model's own uniqueness checks (the field's, or the case-insensitive
            # constraint's, which can see a commit the field's check just missed) saw the
            # address taken meanwhile.
            if not users_with_email(email).exists():
                raise
            address = None
    if address is None:
        get_adapter().send_account_already_exists_mail(email)
        return "exists"
    address.send_confirmation(None, signup=True)
    return "created"


def deliver_email(message: dict) -> None:
    email = EmailMultiAlternatives(
        subject=message["subject"],
        body=message["body"],
        from_email=message["from_email"],
        to=message["to"],
        headers=message["headers"],
    )
    for content, mimetype in message["alternatives"]:
        email.attach_alternative(content, mimetype)
    email.send()
