"""The device's secrets on disk: the protocol root key (from the provisioning bundle) and the
meter's own Ed25519 signing key (created on the device, never leaves it).

Both files are written atomically (temporary file, fsync, rename, fsync of the directory)
with mode 0600, and refused when group or others can read them - the same rule as the store's
MAC key. Nothing secret is in the software image (S14, PC16): a fresh box has no key until
an installer loads its bundle.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meteragent.bundle import Bundle

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
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_private(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist (load a provisioning bundle first)") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} must not be accessible by group/others (chmod 600)")
    return path.read_bytes()


def save_keys(path: Path, keys: DeviceKeys) -> None:
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
    }
    write_private(path, json.dumps(body, indent=2).encode() + b"\n")


def load_keys(path: Path) -> DeviceKeys:
    try:
        body = json.loads(read_private(path))
        if body.get("format") != FORMAT or body.get("version") != VERSION:
            raise KeyFileError(f"{path} is not a version {VERSION} key file")
        root = base64.b64decode(body["root_key"], validate=True)
        release = body.get("release_public_key")
        keys = DeviceKeys(
            meter_number=str(body["meter_number"]),
            key_id=int(body["key_id"]),
            root_key=root,
            utility_msisdn=str(body["utility_msisdn"]),
            release_public_key=base64.b64decode(release, validate=True) if release else None,
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
