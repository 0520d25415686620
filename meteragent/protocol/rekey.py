"""Over-the-air rekey: an ephemeral X25519 exchange authenticated under the current key.

::

    server: REKEY_INIT(new_key_id, server_public)            sealed under the current key
    meter:  REKEY_ACCEPT(init_counter, new_key_id, meter_public)  sealed under the current key
    both:   next_root = HKDF-SHA256(ikm = X25519(shared secret),
                                    salt = current keys' rekey_salt,
                                    info = transcript(old id, new id, both public keys))

Authentication comes from the frames (both halves travel under the current AEAD keys, so a
man in the middle without the current key cannot substitute public keys). Forward secrecy:
both private keys are ephemeral and dropped right after the exchange, so a later compromise of
the old or new root key does not reveal the other, and someone who only recorded traffic and
later steals the *old* key cannot compute the new one (they lack the X25519 secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from meteragent.protocol.errors import Malformed
from meteragent.protocol.keys import ROOT_KEY_BYTES, SessionKeys, derive_keys, hkdf_sha256
from meteragent.protocol.messages import RekeyAccept, RekeyInit

REKEY_LABEL = b"meteragent rekey v1"


def _public_bytes(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def transcript(
    old_key_id: int, new_key_id: int, server_public: bytes, meter_public: bytes
) -> bytes:
    """HKDF ``info``: label || old id (2) || new id (2) || server pub (32) || meter pub (32)."""
    return (
        REKEY_LABEL
        + old_key_id.to_bytes(2, "big")
        + new_key_id.to_bytes(2, "big")
        + server_public
        + meter_public
    )


def derive_next_root(
    private: X25519PrivateKey,
    peer_public: bytes,
    *,
    current: SessionKeys,
    new_key_id: int,
    server_public: bytes,
    meter_public: bytes,
) -> bytes:
    """The next 32-byte root key. Raises :class:`Malformed` for a low-order peer key."""
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:  # all-zero shared secret (RFC 7748 section 6.1) or bad length
        raise Malformed("unusable X25519 public key") from None
    info = transcript(current.key_id, new_key_id, server_public, meter_public)
    return hkdf_sha256(shared, salt=current.rekey_salt, info=info, length=ROOT_KEY_BYTES)


@dataclass(frozen=True)
class PendingRekey:
    """Meter side, persisted from before REKEY_ACCEPT is sent until the first downlink frame
    under ``new_key_id`` verifies. Holds no private key: only the result and public data."""

    new_key_id: int
    server_public: bytes
    accept: RekeyAccept
    new_root: bytes = field(repr=False)

    @property
    def new_keys(self) -> SessionKeys:
        return derive_keys(self.new_root, self.new_key_id)


def meter_handle_init(
    current: SessionKeys,
    init: RekeyInit,
    init_counter: int,
    pending: PendingRekey | None = None,
    *,
    private: X25519PrivateKey | None = None,
) -> PendingRekey:
    """Meter: answer a verified REKEY_INIT (received under ``current`` with downlink counter
    ``init_counter``).

    A repeat of the INIT the meter already answered (same new key id and server key: the
    ACCEPT was lost) returns ``pending`` unchanged, so the meter re-sends the same ACCEPT body
    in a new frame and both sides still derive the same key. A different INIT starts over.
    ``private`` is for test vectors only; normally a fresh key is generated and dropped here.
    """
    if init.new_key_id == current.key_id:
        raise Malformed("rekey to the key id already in use")
    if (
        pending is not None
        and pending.new_key_id == init.new_key_id
        and pending.server_public == init.server_public
    ):
        return pending
    eph = private if private is not None else X25519PrivateKey.generate()
    meter_public = _public_bytes(eph)
    new_root = derive_next_root(
        eph,
        init.server_public,
        current=current,
        new_key_id=init.new_key_id,
        server_public=init.server_public,
        meter_public=meter_public,
    )
    accept = RekeyAccept(init_counter, init.new_key_id, meter_public)
    return PendingRekey(init.new_key_id, init.server_public, accept, new_root)


class ServerRekey:
    """Server: one rekey exchange in progress. Keep it (private key wrapped under the KEK if it
    must survive a restart) only until :meth:`finish` or until the exchange is abandoned."""

    def __init__(
        self, current: SessionKeys, new_key_id: int, private: X25519PrivateKey | None = None
    ) -> None:
        if new_key_id == current.key_id:
            raise ValueError("the new key id must differ from the current one")
        self.current = current
        self.new_key_id = new_key_id
        self._private: X25519PrivateKey | None = (
            private if private is not None else X25519PrivateKey.generate()
        )
        self.server_public = _public_bytes(self._private)

    @property
    def init_message(self) -> RekeyInit:
        """The REKEY_INIT to seal under ``current`` (resend the same one if unanswered)."""
        return RekeyInit(self.new_key_id, self.server_public)

    def private_bytes(self) -> bytes:
        """Raw private key, only to persist the exchange (wrapped) across a server restart."""
        if self._private is None:
            raise ValueError("exchange already finished")
        return self._private.private_bytes_raw()

    @classmethod
    def restore(cls, current: SessionKeys, new_key_id: int, private_raw: bytes) -> ServerRekey:
        return cls(current, new_key_id, X25519PrivateKey.from_private_bytes(private_raw))

    def finish(self, accept: RekeyAccept) -> bytes:
        """Derive the next root key from a verified REKEY_ACCEPT and forget the private key.

        Store the result as the meter's NEW key under ``new_key_id``; make it ACTIVE (and
        retire the old key) when the first uplink frame under ``new_key_id`` verifies.
        """
        if self._private is None:
            raise ValueError("exchange already finished")
        if accept.new_key_id != self.new_key_id:
            raise Malformed("REKEY_ACCEPT names another key id than the pending exchange")
        new_root = derive_next_root(
            self._private,
            accept.meter_public,
            current=self.current,
            new_key_id=self.new_key_id,
            server_public=self.server_public,
            meter_public=accept.meter_public,
        )
        self._private = None  # forward secrecy: the ephemeral key ends with the exchange
        return new_root
