"""Reads for meters and their keys."""

from __future__ import annotations

from functools import lru_cache

from django.db.models import QuerySet

from meteragent.protocol import SessionKeys, derive_keys

from .keystore import get_keystore
from .models import KeyState, Meter, MeterKey


def key_context(meter_number: str, key_id: int) -> bytes:
    """Binds a wrapped key to its meter and key id: a blob moved to another row won't open."""
    return f"{meter_number}|{key_id}".encode()


def session_keys(meter_key: MeterKey) -> SessionKeys:
    """Unwrap one root key (needs the private KEK) and expand it into the protocol's keys."""
    return _session_keys(
        bytes(meter_key.wrapped_key), meter_key.meter.number, meter_key.key_id, meter_key.kek_id
    )


# The ingest service opens many frames of the same meters: keep recently unwrapped keys in
# process memory (which already holds the private KEK) instead of an HPKE decryption per frame.
# The wrapped blob is part of the cache key, so a re-wrapped or replaced key is unwrapped anew.
@lru_cache(maxsize=20_000)
def _session_keys(wrapped: bytes, meter_number: str, key_id: int, kek_id: str) -> SessionKeys:
    root = get_keystore().unwrap(wrapped, context=key_context(meter_number, key_id), kek_id=kek_id)
    return derive_keys(root, key_id)


def reset_keystore() -> None:
    """Forget the configured key store and every key unwrapped with it (settings changed)."""
    get_keystore.cache_clear()
    _session_keys.cache_clear()


def usable_keys(meter: Meter) -> QuerySet[MeterKey]:
    """Keys an uplink frame may be sealed under: the active key and a pending successor."""
    return meter.keys.filter(state__in=(KeyState.ACTIVE, KeyState.PENDING))


def downlink_key(meter: Meter) -> MeterKey | None:
    """The key to seal the next downlink under: a pending successor from a completed key
    agreement (so the meter learns the server holds it), else the active key, else a bundle
    key the meter has not used yet."""
    keys = {k.state: k for k in usable_keys(meter).order_by("key_id")}
    return keys.get(KeyState.PENDING) or keys.get(KeyState.ACTIVE)


def next_key_id(meter: Meter) -> int:
    last = meter.keys.order_by("-key_id").values_list("key_id", flat=True).first()
    return 1 if last is None else last + 1
