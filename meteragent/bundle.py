"""The provisioning bundle: what the installer loads into a new meter (one per meter, once).

Created by the utility's provisioning tool, read by the meter's service console. JSON, so an
installer's tooling can inspect it; it holds the meter's root key, so it is handled like one:
downloaded once, loaded, deleted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

FORMAT = "meteragent-bundle"
VERSION = 1
MAX_BUNDLE_BYTES = 4096
_METER_NUMBER = re.compile(r"[A-Z0-9]{25}")
_MSISDN = re.compile(r"\+[1-9][0-9]{6,14}")


class BundleError(ValueError):
    """The file is not a valid provisioning bundle."""


@dataclass(frozen=True)
class Bundle:
    meter_number: str
    key_id: int
    root_key: bytes = field(repr=False)
    utility_msisdn: str
    issued_at: datetime
    release_public_key: bytes | None = None  # Ed25519 key that signs software updates

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": VERSION,
            "meter_number": self.meter_number,
            "key_id": self.key_id,
            "root_key": base64.b64encode(self.root_key).decode(),
            "utility_msisdn": self.utility_msisdn,
            "issued_at": self.issued_at.isoformat(),
            "release_public_key": base64.b64encode(self.release_public_key).decode()
            if self.release_public_key
            else None,
        }
        return json.dumps(body, indent=2).encode() + b"\n"


def _b64(value: object, name: str, length: int) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{name} must be base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{name} is not valid base64") from None
    if len(raw) != length:
        raise BundleError(f"{name} must be {length} bytes")
    return raw


def parse_bundle(data: bytes) -> Bundle:
    """Validate and parse a bundle file; raises BundleError with the reason."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("bundle too large")
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError("bundle is not JSON") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise BundleError("not a meteragent bundle")
    if body.get("version") != VERSION:
        raise BundleError(f"unsupported bundle version {body.get('version')!r}")
    number = body.get("meter_number")
    if not isinstance(number, str) or not _METER_NUMBER.fullmatch(number):
        raise BundleError("meter_number must be 25 letters and digits")
    key_id = body.get("key_id")
    if not isinstance(key_id, int) or isinstance(key_id, bool) or not 0 <= key_id <= 0xFFFF:
        raise BundleError("key_id must be an integer 0..65535")
    msisdn = body.get("utility_msisdn")
    if not isinstance(msisdn, str) or not _MSISDN.fullmatch(msisdn):
        raise BundleError("utility_msisdn must be an E.164 number")
    try:
        issued_at = datetime.fromisoformat(body.get("issued_at") or "")
    except (TypeError, ValueError):
        raise BundleError("issued_at must be an ISO 8601 time") from None
    release = body.get("release_public_key")
    return Bundle(
        meter_number=number,
        key_id=key_id,
        root_key=_b64(body.get("root_key"), "root_key", 32),
        utility_msisdn=msisdn,
        issued_at=issued_at,
        release_public_key=_b64(release, "release_public_key", 32) if release else None,
    )
