"""How one audit record is sealed into the chain: HMAC-SHA256 over its content and its
predecessor's hash, keyed by AUDIT_KEY (held outside the database)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, hmac
from django.conf import settings

if TYPE_CHECKING:
    from .models import AuditEvent


def normalise_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details as they will read back from the database (JSON types only)."""
    return json.loads(json.dumps(details or {}, default=str))


def canonical_bytes(event: AuditEvent) -> bytes:
    content = {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "source_ip": event.source_ip,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(event: AuditEvent) -> str:
    """The record's hash: an HMAC, so only a holder of AUDIT_KEY can forge a valid chain."""
    mac = hmac.HMAC(settings.AUDIT_KEY.encode(), hashes.SHA256())
    mac.update(canonical_bytes(event))
    return mac.finalize().hex()


def is_sealed_correctly(event: AuditEvent) -> bool:
    mac = hmac.HMAC(settings.AUDIT_KEY.encode(), hashes.SHA256())
    mac.update(canonical_bytes(event))
    try:
        mac.verify(bytes.fromhex(event.hash))
    except Exception:
        return False
    return True
