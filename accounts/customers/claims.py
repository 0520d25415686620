"""Meter claims below the tasks that serve them: recording a claim and hashing its code. Used by
the web side (`services.request_claim`, `services.verify_claim`) and by the workers (`jobs`);
nothing here enqueues a task."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.crypto import salted_hmac

from accounts.conf import setting
from accounts.models import ClaimStatus, MeterClaim, User
from audit.services import record
from devices.models import MeterStatus

# Meters that can show a code: they hold a key and are in service.
CLAIMABLE_STATUSES = (MeterStatus.ACTIVE, MeterStatus.PROVISIONED)


def code_hash(claim_id: int, code: str) -> str:
    return salted_hmac("accounts.meter_claim", f"{claim_id}:{code}").hexdigest()


def open_claim(user: User, meter_number: str, *, now: datetime) -> MeterClaim:
    """Record a claim (its code is sent by the `accounts.send_claim_code` task)."""
    # Older pending claims for the same meter stop working: only the newest code counts.
    MeterClaim.objects.filter(
        user=user,
        meter_number=meter_number,
        status__in=[ClaimStatus.REQUESTED, ClaimStatus.SENT, ClaimStatus.UNDELIVERABLE],
    ).update(status=ClaimStatus.EXPIRED)
    claim = MeterClaim.objects.create(
        user=user,
        meter_number=meter_number,
        created_at=now,
        expires_at=now + timedelta(minutes=setting("CLAIM_CODE_TTL_MINUTES")),
    )
    record(
        "customer.claim_requested",
        actor=user,
        target=f"meter:{meter_number}",
        details={"claim": claim.pk},
    )
    return claim
