"""The device's secrets on disk: the protocol root key (from the provisioning bundle, later
replaced by over-the-air rekeys), a pending rekey while one is in progress, and the meter's own
Ed25519 signing key (created on the device, never leaves it).

Both files are written atomically (temporary file, fsync, rename, fsync of the directory)
with mode 0600, and refused when group or others can read them - the same rule as the store's
MAC key. Nothing secret is in the software image (S14, PC16): a fresh box has no key until
an installer loads its bundle.
"""

from __future__ import annotations

import base64
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meteragent.atomic import write_atomic
from meteragent.bundle import Bundle
from meteragent.protocol.messages import RekeyAccept
from meteragent.protocol.rekey import PendingRekey

FORMAT = "meteragent-keys"
VERSION = 1


class KeyFileError(Exception):
    """The key file is missing, unreadable, malformed or too widely readable."""


@dataclass(frozen=True)
class DeviceKeys:
    meter_number: str
    key_id: int
    root_key: bytes = field(repr=False)
    utility_msisdn: str
    release_public_key: bytes | None = None
    # An answered REKEY_INIT (docs/protocol.md section 10): kept until the first downlink
    # frame under its key id verifies. Holds the derived root key, never a private key.
    pending_rekey: PendingRekey | None = field(default=None, repr=False)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> DeviceKeys:
        return cls(
            bundle.meter_number,
            bundle.key_id,
            bundle.root_key,
            bundle.utility_msisdn,
            bundle.release_public_key,
        )


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, durable on return."""
    write_atomic(path, data, 0o600)


def read_private(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist (load a provisioning bundle first)") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} must not be accessible by group/others (chmod 600)")
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pending_to_json(p: PendingRekey) -> dict[str, Any]:
    return {
        "new_key_id": p.new_key_id,
        "server_public": _b64(p.server_public),
        "accept": {
            "answers_counter": p.accept.answers_counter,
            "new_key_id": p.accept.new_key_id,
            "meter_public": _b64(p.accept.meter_public),
        },
        "new_root": _b64(p.new_root),
    }


def _pending_from_json(raw: dict[str, Any], current_key_id: int) -> PendingRekey:
    accept = raw["accept"]
    pending = PendingRekey(
        new_key_id=int(raw["new_key_id"]),
        server_public=base64.b64decode(raw["server_public"], validate=True),
        accept=RekeyAccept(
            answers_counter=int(accept["answers_counter"]),
            new_key_id=int(accept["new_key_id"]),
            meter_public=base64.b64decode(accept["meter_public"], validate=True),
        ),
        new_root=base64.b64decode(raw["new_root"], validate=True),
    )
    if (
        not 0 <= pending.new_key_id <= 0xFFFF
        or pending.new_key_id == current_key_id
        or pending.accept.new_key_id != pending.new_key_id
        or not 0 < pending.accept.answers_counter <= 0xFFFF_FFFF
        or len(pending.server_public) != 32
        or len(pending.accept.meter_public) != 32
        or len(pending.new_root) != 32
    ):
        raise ValueError("invalid pending rekey")
    return pending


def save_keys(path: Path, keys: DeviceKeys) -> None:
    """Atomically replace the key file: the old content (a previous root key included) is
    gone from the file once this returns."""
    body = {
        "format": FORMAT,
        "version": VERSION,
        "meter_number": keys.meter_number,
        "key_id": keys.key_id,
        "root_key": base64.b64encode(keys.root_key).decode(),
        "utility_msisdn": keys.utility_msisdn,
        "release_public_key": base64.b64encode(keys.release_public_key).decode()
        if keys.release_public_key
        else None,
        "pending_rekey": _pending_to_json(keys.pending_rekey) if keys.pending_rekey else None,
    }
    write_private(path, json.dumps(body, indent=2).encode() + b"\n")


def load_keys(path: Path) -> DeviceKeys:
    try:
        body = json.loads(read_private(path))
        if body.get("format") != FORMAT or body.get("version") != VERSION:
            raise KeyFileError(f"{path} is not a version {VERSION} key file")
        root = base64.b64decode(body["root_key"], validate=True)
        release = body.get("release_public_key")
        pending = body.get("pending_rekey")
        keys = DeviceKeys(
            meter_number=str(body["meter_number"]),
            key_id=int(body["key_id"]),
            root_key=root,
            utility_msisdn=str(body["utility_msisdn"]),
            release_public_key=base64.b64decode(release, validate=True) if release else None,
            pending_rekey=_pending_from_json(pending, int(body["key_id"])) if pending else None,
        )
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path} is damaged: {exc}") from None
    if len(keys.root_key) != 32 or not 0 <= keys.key_id <= 0xFFFF:
        raise KeyFileError(f"{path} holds an invalid key")
    return keys


def load_or_create_signing_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The meter's Ed25519 key (created at provisioning); returns (key, created)."""
    if path.exists():
        return load_signing_key(path), False
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    write_private(path, raw)
    return key, True


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    raw = read_private(path)
    if len(raw) != 32:
        raise KeyFileError(f"{path} is not a raw 32-byte Ed25519 key")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
