"""Language-neutral test vectors for protocol v1 (``vectors.json`` next to this file).

``python -m meteragent.protocol.vectors --write`` regenerates the file; ``--check`` rebuilds
it in memory and fails unless the stored file matches byte for byte. Everything is
deterministic: fixed root keys, counters and X25519 private keys (AES-GCM has no randomness
once key and nonce are fixed). Byte strings are lower-case hex.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from meteragent.protocol.errors import ProtocolError
from meteragent.protocol.frame import KeyState, nonce_for, open_frame, seal_frame, seal_payload
from meteragent.protocol.keys import Direction, SessionKeys, derive_keys
from meteragent.protocol.messages import (
    Ack,
    DeviceInfo,
    DisplayCode,
    Message,
    MessageType,
    RekeyAccept,
    RekeyInit,
    Report,
    Schedule,
    encode_payload,
)
from meteragent.protocol.readings import Event, EventKind, Reading
from meteragent.protocol.rekey import ServerRekey, meter_handle_init, transcript
from meteragent.protocol.replay import ReplayWindow

VECTORS_PATH = Path(__file__).with_name("vectors.json")

ROOT_A = bytes(range(32))  # 000102...1f
ROOT_B = bytes.fromhex("c0ffee" * 10 + "0102")
SERVER_EPHEMERAL = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
METER_EPHEMERAL = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
# RFC 8032 section 7.1 test 1 public key: a well-known valid Ed25519 point.
DEVICE_SIGNING_PUBLIC = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
H0 = T0 // 3600


# --- JSON form of messages (also used by the tests and other tools) ------------------------


def _report_to_json(msg: Report) -> dict[str, Any]:
    return {
        "sent_at": msg.sent_at,
        "remaining": msg.remaining,
        "events": [{"kind": e.kind.name, "time": e.time, "arg": e.arg} for e in msg.events],
        "readings": [[r.hour, r.wh] for r in msg.readings],
    }


def _report_from_json(d: dict[str, Any]) -> Report:
    return Report(
        d["sent_at"],
        tuple(Reading(h, wh) for h, wh in d["readings"]),
        tuple(Event(EventKind[e["kind"]], e["time"], e["arg"]) for e in d["events"]),
        d["remaining"],
    )


def _ack_to_json(msg: Ack) -> dict[str, Any]:
    sched = msg.schedule
    return {
        "answers_counter": msg.answers_counter,
        "acked_through_hour": msg.acked_through_hour,
        "server_time": msg.server_time,
        "display_code": msg.display_code.code if msg.display_code else None,
        "resend_from_hour": msg.resend_from_hour,
        "schedule": (
            [sched.first_minute, sched.second_minute, sched.jitter_minutes] if sched else None
        ),
    }


def _ack_from_json(d: dict[str, Any]) -> Ack:
    return Ack(
        d["answers_counter"],
        d["acked_through_hour"],
        d["server_time"],
        DisplayCode(d["display_code"]) if d["display_code"] else None,
        d["resend_from_hour"],
        Schedule(*d["schedule"]) if d["schedule"] else None,
    )


def _rekey_init_to_json(msg: RekeyInit) -> dict[str, Any]:
    return {"new_key_id": msg.new_key_id, "server_public": msg.server_public.hex()}


def _rekey_init_from_json(d: dict[str, Any]) -> RekeyInit:
    return RekeyInit(d["new_key_id"], bytes.fromhex(d["server_public"]))


def _device_info_to_json(msg: DeviceInfo) -> dict[str, Any]:
    return {"signing_public": msg.signing_public.hex(), "software_version": msg.software_version}


def _device_info_from_json(d: dict[str, Any]) -> DeviceInfo:
    return DeviceInfo(bytes.fromhex(d["signing_public"]), d["software_version"])


def _rekey_accept_to_json(msg: RekeyAccept) -> dict[str, Any]:
    return {
        "answers_counter": msg.answers_counter,
        "new_key_id": msg.new_key_id,
        "meter_public": msg.meter_public.hex(),
    }


def _rekey_accept_from_json(d: dict[str, Any]) -> RekeyAccept:
    return RekeyAccept(d["answers_counter"], d["new_key_id"], bytes.fromhex(d["meter_public"]))


# The JSON form of each message type ("type" is the MessageType's name), beside the wire
# codecs in `messages.MESSAGE_TYPES`.
_JSON_FORMS: dict[MessageType, tuple[Callable[[Any], dict[str, Any]], Callable[..., Message]]] = {
    MessageType.REPORT: (_report_to_json, _report_from_json),
    MessageType.ACK: (_ack_to_json, _ack_from_json),
    MessageType.REKEY_INIT: (_rekey_init_to_json, _rekey_init_from_json),
    MessageType.DEVICE_INFO: (_device_info_to_json, _device_info_from_json),
    MessageType.REKEY_ACCEPT: (_rekey_accept_to_json, _rekey_accept_from_json),
}


def message_to_json(msg: Message) -> dict[str, Any]:
    to_json, _ = _JSON_FORMS[msg.TYPE]
    return {"type": msg.TYPE.name, **to_json(msg)}


def message_from_json(d: dict[str, Any]) -> Message:
    kind = d["type"]
    try:
        _, from_json = _JSON_FORMS[MessageType[kind]]
    except KeyError:
        raise ValueError(f"unknown message type {kind!r}") from None
    return from_json(d)


# --- building the vectors -----------------------------------------------------------------


def _keys_json(root: bytes, keys: SessionKeys) -> dict[str, Any]:
    return {
        "root_key": root.hex(),
        "key_id": keys.key_id,
        "uplink_key": keys.uplink_key.hex(),
        "downlink_key": keys.downlink_key.hex(),
        "uplink_nonce_prefix": keys.uplink_nonce_prefix.hex(),
        "downlink_nonce_prefix": keys.downlink_nonce_prefix.hex(),
        "rekey_salt": keys.rekey_salt.hex(),
    }


def _household_day() -> tuple[Reading, ...]:
    # A plausible winter day: low at night, peaks morning and evening (Wh per hour).
    use = [180, 150, 140, 130, 140, 260, 820, 1250, 900, 600, 480, 520,
           610, 540, 470, 560, 900, 1800, 2400, 2100, 1500, 1100, 700, 320]  # fmt: skip
    wh, out = 8_754_321, []
    for i, u in enumerate(use):
        out.append(Reading(H0 + i, wh))
        wh += u
    return tuple(out)


def _message_cases() -> list[tuple[str, bytes, int, int, Message]]:
    day = _household_day()
    gappy = (
        Reading(H0, 1000),
        Reading(H0 + 1, 1040),
        Reading(H0 + 5, 5000),  # 3 hours missing
        Reading(H0 + 6, 4990),  # went backwards: fault or tampering, must be reported
        Reading(H0 + 7, 4990),
    )
    events = (
        Event(EventKind.REBOOT, T0 + 3 * 3600, 0),
        Event(EventKind.TAMPER, T0 + 5 * 3600 + 17 * 60, 1),
        Event(EventKind.CLOCK_STEP, T0 + 6 * 3600, -420),
        Event(EventKind.SERVICE_ACTION, T0 + 7 * 3600 + 60, 3),
        Event(EventKind.STORE_INTEGRITY, T0 + 7 * 3600 + 120, 2),
    )
    sent = T0 + 24 * 3600 + 7 * 60 + 13
    return [
        ("report: a full day, 24 hourly readings", ROOT_A, 1, 1, Report(sent, day)),
        ("report: gaps, a backward step, every event kind", ROOT_A, 1, 2,
         Report(T0 + 8 * 3600, gappy, events, remaining=1)),
        ("heartbeat: report without readings", ROOT_A, 1, 3, Report(sent)),
        ("ack: high-water mark and time only", ROOT_A, 1, 1,
         Ack(1, H0 + 23, sent + 95)),
        ("ack: with every command", ROOT_A, 1, 2,
         Ack(2, H0 + 7, T0 + 8 * 3600 + 30, DisplayCode("04711234"), H0 - 48,
             Schedule(6 * 60 + 30, 18 * 60 + 30, 45))),
        ("ack: nothing acknowledged yet, key id 513, large counter", ROOT_B, 513, 0xFFFF_FFFE,
         Ack(0xFFFF_FFFF, None, T0)),
        ("device info: signing key and software version", ROOT_A, 1, 4,
         DeviceInfo(DEVICE_SIGNING_PUBLIC, "0.1.0")),
    ]  # fmt: skip


def _frame_case(name: str, root: bytes, key_id: int, counter: int, msg: Message) -> dict:
    keys = derive_keys(root, key_id)
    direction = msg.TYPE.direction
    return {
        "name": name,
        "root_key": root.hex(),
        "key_id": key_id,
        "direction": direction.name,
        "counter": counter,
        "message": message_to_json(msg),
        "nonce": nonce_for(keys, direction, counter).hex(),
        "plaintext": encode_payload(msg).hex(),
        "frame": seal_frame(msg, keys=keys, counter=counter).hex(),
    }


def _error_of(frame: bytes, direction: Direction, keys: SessionKeys, window: ReplayWindow) -> str:
    def lookup(key_id: int) -> KeyState | None:
        return KeyState(keys, window) if key_id == keys.key_id else None

    try:
        open_frame(frame, direction=direction, lookup=lookup)
    except ProtocolError as err:
        return type(err).__name__
    raise AssertionError("negative vector unexpectedly verified")


def build_vectors() -> dict[str, Any]:
    keys_a = derive_keys(ROOT_A, 1)
    messages = [_frame_case(*case) for case in _message_cases()]

    # Rekey from (ROOT_A, key id 1) to key id 2, with fixed ephemeral keys.
    server = ServerRekey(keys_a, 2, X25519PrivateKey.from_private_bytes(SERVER_EPHEMERAL))
    init = server.init_message
    init_counter = 3
    pending = meter_handle_init(
        keys_a, init, init_counter, private=X25519PrivateKey.from_private_bytes(METER_EPHEMERAL)
    )
    server_root = server.finish(pending.accept)
    assert server_root == pending.new_root
    new_keys = derive_keys(pending.new_root, 2)
    shared = X25519PrivateKey.from_private_bytes(SERVER_EPHEMERAL).exchange(
        X25519PrivateKey.from_private_bytes(METER_EPHEMERAL).public_key()
    )
    rekey = {
        "old_root_key": ROOT_A.hex(),
        "old_key_id": 1,
        "new_key_id": 2,
        "server_private": SERVER_EPHEMERAL.hex(),
        "server_public": init.server_public.hex(),
        "meter_private": METER_EPHEMERAL.hex(),
        "meter_public": pending.accept.meter_public.hex(),
        "shared_secret": shared.hex(),
        "hkdf_salt": keys_a.rekey_salt.hex(),
        "hkdf_info": transcript(1, 2, init.server_public, pending.accept.meter_public).hex(),
        "new_root_key": pending.new_root.hex(),
        "new_keys": _keys_json(pending.new_root, new_keys),
        "frames": [
            _frame_case("rekey init (downlink, old key)", ROOT_A, 1, init_counter, init),
            _frame_case("rekey accept (uplink, old key)", ROOT_A, 1, 4, pending.accept),
            _frame_case(
                "first report under the new key",
                pending.new_root,
                2,
                1,
                Report(T0 + 3600, (Reading(H0, 10),)),
            ),
        ],
    }

    base = bytes.fromhex(messages[0]["frame"])
    flipped = bytearray(base)
    flipped[60] ^= 0x04
    tag_flipped = bytearray(base)
    tag_flipped[-1] ^= 0x80
    header_flipped = bytearray(base)
    header_flipped[6] ^= 0x02  # counter 1 -> 3: the header is authenticated as AAD
    bad_version = bytearray(base)
    bad_version[0] = 0x20
    wrong_key_id = bytearray(base)
    wrong_key_id[2] ^= 0x02
    padded = bytearray(encode_payload(Report(T0)))
    padded[-1] = 0x01
    bad_padding = seal_payload(bytes(padded), keys=keys_a, direction=Direction.UPLINK, counter=9)
    wrong_type = seal_payload(
        encode_payload(Ack(1, None, T0)), keys=keys_a, direction=Direction.UPLINK, counter=10
    )
    seen = ReplayWindow().accept(1)
    far_ahead = ReplayWindow().accept(1 + 64)
    neg_cases: list[tuple[str, bytes, ReplayWindow]] = [
        ("ciphertext bit flipped", bytes(flipped), ReplayWindow()),
        ("tag bit flipped", bytes(tag_flipped), ReplayWindow()),
        ("counter in header changed", bytes(header_flipped), ReplayWindow()),
        ("version 2", bytes(bad_version), ReplayWindow()),
        ("key id not known", bytes(wrong_key_id), ReplayWindow()),
        ("replayed: counter 1 already accepted", base, seen),
        ("stale: counter 1 is 64 behind the highest (65)", base, far_ahead),
        ("truncated by one byte", base[:-1], ReplayWindow()),
        ("one byte too long", base + b"\x00", ReplayWindow()),
        ("empty", b"", ReplayWindow()),
        ("authentic but non-zero padding", bad_padding, ReplayWindow()),
        ("authentic uplink frame sealed with a downlink message type", wrong_type, ReplayWindow()),
    ]
    negative = [
        {
            "name": name,
            "root_key": ROOT_A.hex(),
            "key_id": 1,
            "direction": "UPLINK",
            "window": list(window.to_tuple()),
            "frame": frame.hex(),
            "error": _error_of(frame, Direction.UPLINK, keys_a, window),
        }
        for name, frame, window in neg_cases
    ]
    return {
        "protocol": "meteragent wire protocol v1 (docs/protocol.md)",
        "generated_by": "python -m meteragent.protocol.vectors --write",
        "conventions": (
            "hex byte strings; integers big-endian on the wire; hours are unix hours; "
            "window is [highest, bitmap] of the receiver before the frame"
        ),
        "key_derivation": [
            _keys_json(ROOT_A, keys_a),
            _keys_json(ROOT_B, derive_keys(ROOT_B, 513)),
        ],
        "messages": messages,
        "rekey": rekey,
        "negative": negative,
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=2, sort_keys=False) + "\n"


def check(path: Path = VECTORS_PATH) -> bool:
    """True if the stored file equals what this implementation generates, byte for byte."""
    return path.exists() and path.read_text(encoding="utf-8") == render(build_vectors())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate vectors.json")
    mode.add_argument("--check", action="store_true", help="fail unless vectors.json matches")
    args = parser.parse_args(argv)
    if args.write:
        VECTORS_PATH.write_text(render(build_vectors()), encoding="utf-8")
        print(f"wrote {VECTORS_PATH}")
        return 0
    if check():
        print(f"{VECTORS_PATH}: OK")
        return 0
    print(f"{VECTORS_PATH}: differs from the generated vectors", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
