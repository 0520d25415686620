"""API tokens: a customer's own, and consents that let a named third party read one meter.

A token is `mpt_<prefix>_<secret>` with 256 random bits; only its SHA-256 is stored, and it is
shown once. Consents are capped at 13 months of past readings and a year of validity.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction

from accounts.conf import setting
from audit.models import Outcome
from audit.services import record
from readings.models import ApiToken, TokenKind
from readings.selectors import Access

logger = logging.getLogger(__name__)

TOKEN_RE_PREFIX = "mpt_"  # noqa: S105 (a label, not a secret)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"{TOKEN_RE_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def months_before(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 - months, 12)
    year += moment.year
    day = min(moment.day, 28)
    return moment.replace(year=year, month=month + 1, day=day)


@transaction.atomic
def create_personal_token(
    user, *, name: str, valid_days: int, now: datetime
) -> tuple[ApiToken, str]:
    valid_days = min(valid_days, setting("API_TOKEN_MAX_DAYS"))
    prefix, secret = _new_secret()
    token = ApiToken.objects.create(
        user=user,
        kind=TokenKind.PERSONAL,
        name=name,
        prefix=prefix,
        token_hash=_hash(secret),
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    record(
        "customer.api_token_created",
        actor=user,
        target=f"token:{prefix}",
        details={"expires": token.expires_at.isoformat()},
    )
    return token, secret


@transaction.atomic
def grant_consent(
    user, access: Access, *, third_party: str, months: int, valid_days: int, now: datetime
) -> tuple[ApiToken, str]:
    """Let `third_party` read `months` (≤ 13) of past readings and new ones until expiry."""
    if not 1 <= months <= setting("API_CONSENT_MAX_MONTHS"):
        raise ValueError(f"at most {setting('API_CONSENT_MAX_MONTHS')} months")
    if access.end is not None:
        raise ValueError("only for a meter you still occupy")
    valid_days = min(valid_days, setting("API_TOKEN_MAX_DAYS"))
    prefix, secret = _new_secret()
    token = ApiToken.objects.create(
        user=user,
        kind=TokenKind.CONSENT,
        name=third_party,
        meter=access.meter,
        prefix=prefix,
        token_hash=_hash(secret),
        data_from=max(months_before(now, months), access.start),
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    record(
        "customer.consent_granted",
        actor=user,
        target=f"meter:{access.meter.number}",
        details={
            "third_party": third_party,
            "token": prefix,
            "months": months,
            "expires": token.expires_at.isoformat(),
        },
    )
    return token, secret


def revoke(token: ApiToken, *, by, now: datetime) -> None:
    if token.revoked_at is None:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        record(
            "customer.api_token_revoked",
            actor=by,
            target=f"token:{token.prefix}",
            details={"kind": token.kind, "name": token.name},
        )


def _record_rejection(target: str, outcome: str, reason: str, *, now: datetime) -> None:
    """Audit a rejected token, but at most API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE a minute:
    a flood of garbage tokens from anonymous clients must not queue every audited action of
    the site behind the audit chain's lock. Beyond that the rejections are only logged."""
    minute_key = f"api-token-rejections:{int(now.timestamp()) // 60}"
    cache.add(minute_key, 0, timeout=120)
    try:
        seen = cache.incr(minute_key)
    except ValueError:
        seen = 1
    logger.warning("API token rejected (%s): %s", reason, target)
    if seen <= setting("API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE"):
        record(
            "api.token_rejected",
            actor="anonymous",
            target=target,
            outcome=outcome,
            details={"reason": reason},
        )
    elif seen == setting("API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE") + 1:
        record(
            "api.token_rejection_flood",
            actor="anonymous",
            target="api",
            outcome=Outcome.ALERT,
            details={"minute": minute_key},
        )


def authenticate_token(raw: str, *, now: datetime) -> ApiToken | None:
    """The valid token matching `raw`, or None (audited as a failure)."""
    parts = raw.split("_")
    if len(parts) < 3 or f"{parts[0]}_" != TOKEN_RE_PREFIX:
        return None
    token = ApiToken.objects.filter(prefix=parts[1]).select_related("user").first()
    expected = token.token_hash if token else "0" * 64
    if not hmac.compare_digest(expected, _hash(raw)) or token is None:
        _record_rejection(f"token:{parts[1][:16]}", Outcome.FAILURE, "unknown", now=now)
        return None
    if not token.is_valid(now) or not token.user.is_active:
        _record_rejection(f"token:{token.prefix}", Outcome.DENIED, "expired or revoked", now=now)
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
