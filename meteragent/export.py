"""Signed readings export for field engineers (PC08): the utility can verify that an upload
came unaltered from this meter, with the meter's own Ed25519 public key (sent upstream in
DEVICE_INFO, stored by the server at first contact).

File format (UTF-8 text, exactly two lines)::

    <body>\\n
    <base64 Ed25519 signature>\\n

``body`` is the canonical JSON of the export object: keys sorted, no whitespace
(``separators=(",", ":")``), ASCII only. The signature is over
``b"meteragent-export v1\\n" + body`` (the prefix separates this use of the key from any
other). The verifier checks the signature over the body bytes exactly as they are in the
file, then that the body is canonical, so any change to any byte - content, whitespace,
the signature's encoding, appended data - makes verification fail.

Body fields: ``format`` ("meteragent-export"), ``version`` (1), ``meter_number``,
``created_at`` (meter clock, unix seconds), ``from_hour``/``to_hour`` (unix hours, or null
when empty), ``readings`` ([[hour, wh], ...] oldest first), ``acknowledged_up_to``,
``store`` (the store's own verification: ``ok``, ``chain_ok``, ``bad_records``,
``chain_problem``, ``head_seq``, ``head_mac``), ``software_version``, ``public_key`` (base64;
informative only - verify with the key the utility holds).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from meteragent.keyfile import public_bytes
from meteragent.store import Store

FORMAT = "meteragent-export"
VERSION = 1
DOMAIN = b"meteragent-export v1\n"
MAX_EXPORT_BYTES = 16 * 1024 * 1024


class ExportError(ValueError):
    """The file is not a valid, authentic export."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build_export(
    store: Store,
    *,
    meter_number: str,
    signing_key: Ed25519PrivateKey,
    created_at: int,
    software_version: str,
    since_hour: int = 0,
) -> bytes:
    """The signed export file's bytes."""
    readings = [[r.hour, r.wh] for r in store.readings(since_hour)]
    report = store.verify()
    head = store.head()
    body = {
        "format": FORMAT,
        "version": VERSION,
        "meter_number": meter_number,
        "created_at": int(created_at),
        "from_hour": readings[0][0] if readings else None,
        "to_hour": readings[-1][0] if readings else None,
        "readings": readings,
        "acknowledged_up_to": store.acknowledged_up_to(),
        "store": {
            "ok": report.ok,
            "chain_ok": report.chain_ok,
            "chain_problem": report.chain_problem,
            "bad_records": len(report.bad_records),
            "head_seq": head.seq,
            "head_mac": head.mac.hex(),
        },
        "software_version": software_version,
        "public_key": base64.b64encode(public_bytes(signing_key)).decode(),
    }
    data = canonical(body)
    signature = signing_key.sign(DOMAIN + data)
    return data + b"\n" + base64.b64encode(signature) + b"\n"


@dataclass(frozen=True)
class VerifiedExport:
    meter_number: str
    readings: list[tuple[int, int]]
    body: dict[str, Any]

    @property
    def store_ok(self) -> bool:
        return bool(self.body["store"]["ok"])


def verify_export(
    data: bytes, public_key: bytes, *, meter_number: str | None = None
) -> VerifiedExport:
    """Verify an export with the meter's public key (the one the utility holds); raises
    ExportError with the reason. Never trusts the key inside the file."""
    if len(data) > MAX_EXPORT_BYTES:
        raise ExportError("export too large")
    parts = data.split(b"\n")
    if len(parts) != 3 or parts[2] != b"":
        raise ExportError("an export is exactly two lines")
    body_bytes, sig_text = parts[0], parts[1]
    try:
        signature = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, ValueError):
        raise ExportError("signature is not base64") from None
    if len(signature) != 64 or base64.b64encode(signature) != sig_text:
        raise ExportError("signature is not a canonical base64 Ed25519 signature")
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(signature, DOMAIN + body_bytes)
    except (InvalidSignature, ValueError):
        raise ExportError("signature does not verify with this meter's key") from None
    try:
        body = json.loads(body_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ExportError("body is not JSON") from None
    if not isinstance(body, dict) or canonical(body) != body_bytes:
        raise ExportError("body is not in canonical form")
    if body.get("format") != FORMAT or body.get("version") != VERSION:
        raise ExportError("not a version 1 meteragent export")
    if meter_number is not None and body.get("meter_number") != meter_number:
        raise ExportError("export is from another meter")
    try:
        readings = [(int(h), int(w)) for h, w in body["readings"]]
    except (KeyError, TypeError, ValueError):
        raise ExportError("bad readings list") from None
    return VerifiedExport(str(body["meter_number"]), readings, body)
