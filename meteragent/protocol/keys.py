"""Key hierarchy: one random 256-bit root key per meter and key id, expanded with HKDF.

Every purpose and direction gets its own HKDF output (S2, IC09): a leaked uplink key reveals
nothing about the downlink key, and the rekey salt is never used as an AEAD key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT_KEY_BYTES = 32
AEAD_KEY_BYTES = 32  # AES-256-GCM
NONCE_PREFIX_BYTES = 8  # nonce = prefix (8) || counter (4, big-endian)
MAX_KEY_ID = 0xFFFF

# Fixed HKDF salt: the root key is already uniformly random, so the salt is only a domain
# separator for this protocol and version (RFC 5869 section 3.1 allows a constant salt).
HKDF_SALT = b"meteragent/protocol/v1"
LABEL_PREFIX = b"meteragent v1 "


class Direction(IntEnum):
    """Who sends: the meter (uplink) or the utility's server (downlink)."""

    UPLINK = 0
    DOWNLINK = 1


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) from ``cryptography``; never a hand-rolled KDF."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _derive(root_key: bytes, label: bytes, key_id: int, length: int) -> bytes:
    info = LABEL_PREFIX + label + key_id.to_bytes(2, "big")
    return hkdf_sha256(root_key, salt=HKDF_SALT, info=info, length=length)


@dataclass(frozen=True)
class SessionKeys:
    """All keys derived from one root key. Secret fields are kept out of ``repr``."""

    key_id: int
    uplink_key: bytes = field(repr=False)
    downlink_key: bytes = field(repr=False)
    uplink_nonce_prefix: bytes = field(repr=False)
    downlink_nonce_prefix: bytes = field(repr=False)
    rekey_salt: bytes = field(repr=False)

    def aead_key(self, direction: Direction) -> bytes:
        return self.uplink_key if direction is Direction.UPLINK else self.downlink_key

    def nonce_prefix(self, direction: Direction) -> bytes:
        if direction is Direction.UPLINK:
            return self.uplink_nonce_prefix
        return self.downlink_nonce_prefix


def derive_keys(root_key: bytes, key_id: int) -> SessionKeys:
    """Expand a 32-byte root key into the per-direction, per-purpose keys of ``key_id``.

    The key id is part of every HKDF ``info``, so the same root bytes under two ids still
    yield unrelated keys (a provisioning mistake cannot make two key ids share nonces).
    """
    if not isinstance(root_key, bytes | bytearray) or len(root_key) != ROOT_KEY_BYTES:
        raise ValueError("root key must be exactly 32 bytes")
    if not 0 <= key_id <= MAX_KEY_ID:
        raise ValueError(f"key id out of range 0..{MAX_KEY_ID}: {key_id}")
    root = bytes(root_key)
    return SessionKeys(
        key_id=key_id,
        uplink_key=_derive(root, b"uplink aead", key_id, AEAD_KEY_BYTES),
        downlink_key=_derive(root, b"downlink aead", key_id, AEAD_KEY_BYTES),
        uplink_nonce_prefix=_derive(root, b"uplink nonce", key_id, NONCE_PREFIX_BYTES),
        downlink_nonce_prefix=_derive(root, b"downlink nonce", key_id, NONCE_PREFIX_BYTES),
        rekey_salt=_derive(root, b"rekey salt", key_id, 32),
    )
