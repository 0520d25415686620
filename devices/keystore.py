"""Custody of meter root keys (S1): stored only wrapped under the key-encryption key (KEK).

The KEK is an X25519 key pair used with HPKE (RFC 9180, from `cryptography`). Wrapping needs
only the public half, so the web front end — which generates keys and provisioning bundles —
never holds anything that can unwrap them. Unwrapping needs the private half, which only the
sms workers (the "sms" queue) are given; the webhook stores messages raw and holds none. An
HSM or KMS takes this class's place by implementing `KeyStore` and naming the class in
`DEVICE_KEYSTORE`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from devices.conf import setting

ROOT_KEY_BYTES = 32
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)


class KeyStoreError(Exception):
    """A key could not be wrapped or unwrapped."""


class KeyStoreLocked(KeyStoreError):
    """This process was not given the private KEK (the web front end never is)."""


class KeyStore(Protocol):
    kek_id: str

    def wrap(self, key: bytes, *, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, *, context: bytes, kek_id: str) -> bytes: ...


def new_root_key() -> bytes:
    """A fresh 256-bit root key from the operating system's CSPRNG, never derived (S1)."""
    return secrets.token_bytes(ROOT_KEY_BYTES)


def kek_id_for(public: X25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


def _b64(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise ImproperlyConfigured("a DEVICE_KEK_* value is not valid base64") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured("a DEVICE_KEK_* value must be 32 bytes (base64)")
    return raw


class HpkeKeyStore:
    """Software KEK: public key always, private keys only where configured."""

    def __init__(self, public_key: bytes, private_keys: list[bytes] | None = None) -> None:
        self._public = X25519PublicKey.from_public_bytes(public_key)
        self.kek_id = kek_id_for(self._public)
        self._private: dict[str, X25519PrivateKey] = {}
        for raw in private_keys or []:
            private = X25519PrivateKey.from_private_bytes(raw)
            self._private[kek_id_for(private.public_key())] = private

    @classmethod
    def from_settings(cls) -> HpkeKeyStore:
        public = settings.DEVICE_KEK_PUBLIC_KEY
        if not public:
            raise ImproperlyConfigured(
                "DEVICE_KEK_PUBLIC_KEY is not set; create a KEK with `manage.py generate_kek`."
            )
        privates = [_b64(p) for p in settings.DEVICE_KEK_PRIVATE_KEYS if p.strip()]
        return cls(_b64(public), privates)

    def wrap(self, key: bytes, *, context: bytes) -> bytes:
        return _SUITE.encrypt(key, self._public, info=b"meter-root-key/v1|" + context)

    def unwrap(self, blob: bytes, *, context: bytes, kek_id: str) -> bytes:
        private = self._private.get(kek_id)
        if private is None:
            raise KeyStoreLocked(f"no private key for KEK {kek_id} in this process")
        try:
            return _SUITE.decrypt(bytes(blob), private, info=b"meter-root-key/v1|" + context)
        except (InvalidTag, ValueError) as exc:
            raise KeyStoreError("wrapped key does not open under its KEK and context") from exc


@cache
def get_keystore() -> KeyStore:
    return import_string(setting("DEVICE_KEYSTORE")).from_settings()


def generate_kek() -> tuple[str, str, str]:
    """A new KEK as (kek_id, public base64, private base64)."""
    private = X25519PrivateKey.generate()
    public = private.public_key()
    return (
        kek_id_for(public),
        base64.b64encode(public.public_bytes_raw()).decode(),
        base64.b64encode(private.private_bytes_raw()).decode(),
    )
