"""Customer writes: meter claims proven by a code on the meter's display, move-in/move-out, and
account deletion requests. Every step is audited; nothing here tells a visitor whether a meter
exists (the claim response is the same either way, and only the meter's display shows a code).
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, mail_admins, send_mail
from django.db import transaction

from accounts.conf import setting
from accounts.models import AccountDeletionRequest, ClaimStatus, MeterClaim, MeterOccupancy, User
from audit.models import Outcome
from audit.services import record
from devices.models import Meter, MeterStatus
from readings.models import ApiToken

from . import limits
from .claims import code_hash, open_claim
from .tasks import register_customer as register_customer_task
from .tasks import send_claim_code_on_commit, send_email

logger = logging.getLogger(__name__)

METER_NUMBER_RE = re.compile(r"^[A-Z0-9]{25}$")
# Meters that can show a code: they hold a key and are in service.
CLAIMABLE_STATUSES = (MeterStatus.ACTIVE, MeterStatus.PROVISIONED)


def normalise_meter_number(raw: str) -> str | None:
    """The sticker prints the number in groups; accept spaces and dashes, any case."""
    value = re.sub(r"[\s-]", "", raw or "").upper()
    return value if METER_NUMBER_RE.match(value) else None


# ---- requesting a claim ----


def request_claim(user: User, meter_number: str, *, now: datetime) -> MeterClaim:
    """Record a claim and have a code sent to the meter's display, if there is such a meter.

    The web request does the same work for every number: the lookup of the meter and the
    sealing of the code happen in a task on the SMS workers (which hold the key), so the
    response time does not depend on whether the meter exists.
    """
    claim = open_claim(user, meter_number, now=now)
    send_claim_code_on_commit(claim)
    return claim


# ---- proving a claim ----


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    occupancy: MeterOccupancy | None = None
    locked: bool = False


def claims_locked(user: User) -> bool:
    return limits.reached("claim_failures_per_user", str(user.pk))


def verify_claim(user: User, meter_number: str, code: str, *, now: datetime) -> ClaimResult:
    """Check the code typed by the customer against their newest pending claim for the meter.

    A wrong, expired or never-sent code gives the same answer. A claim allows few attempts; many
    failures across claims lock the account out of claiming for a day and alert security.
    """
    if claims_locked(user):
        record(
            "customer.claim_denied",
            actor=user,
            target=f"meter:{meter_number}",
            outcome=Outcome.DENIED,
            details={"reason": "locked"},
        )
        return ClaimResult(ok=False, locked=True)
    with transaction.atomic():
        claim = (
            MeterClaim.objects.select_for_update()
            .filter(user=user, meter_number=meter_number)
            .order_by("-created_at", "-pk")
            .first()
        )
        live = (
            claim is not None
            and claim.status in (ClaimStatus.SENT, ClaimStatus.UNDELIVERABLE)
            and claim.expires_at > now
        )
        expected = claim.code_hash if live and claim.status == ClaimStatus.SENT else ""
        given = code_hash(claim.pk if claim else 0, (code or "").strip())
        # Compare even when nothing is expected, so the work done does not depend on the meter.
        matches = hmac.compare_digest(expected or "0" * 64, given) and bool(expected)
        if matches:
            claim.status = ClaimStatus.SUCCEEDED
            claim.completed_at = now
            claim.save(update_fields=["status", "completed_at"])
            occupancy = _move_in(user, claim.meter, now=now)
            record(
                "customer.meter_claimed",
                actor=user,
                target=f"meter:{meter_number}",
                details={"claim": claim.pk, "occupancy": occupancy.pk},
            )
            return ClaimResult(ok=True, occupancy=occupancy)
        if claim is not None and live:
            claim.attempts += 1
            if claim.attempts >= setting("CLAIM_CODE_MAX_ATTEMPTS"):
                claim.status = ClaimStatus.FAILED
            claim.save(update_fields=["attempts", "status"])
    record(
        "customer.claim_failed",
        actor=user,
        target=f"meter:{meter_number}",
        outcome=Outcome.FAILURE,
        details={"claim": claim.pk if claim else None},
    )
    limits.hit("claim_failures_per_user", str(user.pk))
    if claims_locked(user):
        _alert_claim_guessing(user, meter_number)
        return ClaimResult(ok=False, locked=True)
    return ClaimResult(ok=False)


def _alert_claim_guessing(user: User, meter_number: str) -> None:
    record(
        "customer.claim_lockout",
        actor=user,
        target=f"meter:{meter_number}",
        outcome=Outcome.ALERT,
        details={"limit": setting("CUSTOMER_LIMITS")["claim_failures_per_user"][0]},
    )
    mail_admins(
        "Meter claim codes being guessed",
        f"Account {user.pk} reached the limit of wrong meter codes and is locked out of claiming "
        "meters for a day. Check the audit log (customer.claim_failed).",
    )


def _move_in(user: User, meter: Meter, *, now: datetime) -> MeterOccupancy:
    """Start the claimant's occupancy; end anyone else's open occupancy at this moment."""
    Meter.objects.select_for_update().filter(pk=meter.pk).first()  # serialises claims per meter
    current = MeterOccupancy.objects.filter(meter=meter, end__isnull=True).first()
    if current is not None and current.user_id == user.pk:
        return current
    if current is not None:
        # A claim that waited for the meter's lock may carry a time before the occupancy it
        # ends began (that one was proven meanwhile): the hand-over is at that start, not before.
        now = max(now, current.start)
        current.end = now
        current.ended_reason = "claimed by new occupant"
        current.save(update_fields=["end", "ended_reason"])
        record(
            "customer.moved_out",
            actor=user,
            target=f"meter:{meter.number}",
            details={"previous_user": current.user_id, "occupancy": current.pk},
        )
        previous = current.user
        transaction.on_commit(lambda: _tell_previous_occupant(previous, meter.number))
    return MeterOccupancy.objects.create(user=user, meter=meter, start=now)


def _tell_previous_occupant(user: User, meter_number: str) -> None:
    send_mail(
        f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Meter {meter_number[-6:]} was claimed",
        "Someone at the premises proved access to meter ending "
        f"{meter_number[-6:]} with the code on its display. You can still see the readings "
        "from your time there, but no newer ones. If you still live there, claim the meter "
        "again from your account page and contact us.",
        None,
        [user.email],
    )


# ---- account deletion ----


def request_account_deletion(user: User, *, reason: str, now: datetime) -> AccountDeletionRequest:
    existing = AccountDeletionRequest.objects.filter(user=user, processed_at__isnull=True).first()
    if existing is not None:
        return existing
    request = AccountDeletionRequest.objects.create(
        user=user, email=user.email, reason=reason[:2000], requested_at=now
    )
    record("customer.deletion_requested", actor=user, target=user.email, details={"id": request.pk})
    return request


@transaction.atomic
def process_deletion_request(
    request: AccountDeletionRequest, *, by: User | str, now: datetime
) -> None:
    """Staff: close the account. Readings stay (they belong to the meter and billing), the
    occupancies end, tokens are revoked, and the login is disabled."""
    user = request.user
    if user is not None:
        MeterOccupancy.objects.filter(user=user, end__isnull=True).update(
            end=now, ended_reason="account deleted"
        )
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
        user.is_active = False
        user.set_unusable_password()
        user.save(update_fields=["is_active", "password"])
    request.processed_at = now
    request.processed_by = by.get_username() if isinstance(by, User) else str(by)
    request.outcome = "account closed"
    request.save(update_fields=["processed_at", "processed_by", "outcome"])
    record(
        "customer.deletion_processed", actor=by, target=request.email, details={"id": request.pk}
    )


def queue_email(message: EmailMessage) -> None:
    """Hand a rendered account e-mail to a worker once the request's writes are committed.
    Every sign-up and reset answer queues exactly one, whatever exists."""
    alternatives = [
        [content, mimetype] for content, mimetype in getattr(message, "alternatives", [])
    ]
    payload = {
        "subject": message.subject,
        "body": message.body,
        "from_email": message.from_email,
        "to": list(message.to),
        "headers": dict(message.extra_headers),
        "alternatives": alternatives,
    }
    transaction.on_commit(lambda: send_email.delay(message=payload))


# --- Sign-up: the request does the same work whatever exists; a task makes the account. ---

SIGNED_UP_SESSION_KEY = "customer_signed_up_email"


def queue_registration(request, *, email: str, meter_number: str) -> None:
    """What the sign-up request does for every address: remember in this browser's session
    which address signed up, and queue the task that makes the account or tells the mailbox
    it has one (`register_customer`). No lookup, write or mail depends on the address."""
    email = email.lower()
    request.session[SIGNED_UP_SESSION_KEY] = email
    transaction.on_commit(
        lambda: register_customer_task.delay(email=email, meter_number=meter_number)
    )


def signed_up_here(request, email_address) -> bool:
    """Whether this browser signed up with the address just confirmed, for an account that
    has no password yet: then confirming signs it in, to go on to the meter code."""
    signed_up = request.session.get(SIGNED_UP_SESSION_KEY)
    if signed_up is None or signed_up != email_address.email.lower():
        return False
    del request.session[SIGNED_UP_SESSION_KEY]
    user = email_address.user
    return email_address.verified and user.is_active and not user.has_usable_password()


@dataclass(frozen=True)
class Site:
    """What e-mail templates read of `current_site` when no request is at hand."""

    name: str
    domain: str


def site() -> Site:
    host = urlsplit(settings.SITE_URL).netloc
    return Site(name=host, domain=host)


def site_url(path: str) -> str:
    """An absolute link on the portal's configured address (never the request's Host)."""
    return settings.SITE_URL.rstrip("/") + path
