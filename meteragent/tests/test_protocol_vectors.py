"""The language-neutral vectors: regenerate byte for byte, and verify each one independently."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meteragent.protocol import KeyState, ProtocolError, ReplayWindow, derive_keys, open_frame
from meteragent.protocol.keys import Direction
from meteragent.protocol.messages import encode_payload
from meteragent.protocol.vectors import (
    VECTORS_PATH,
    build_vectors,
    check,
    message_from_json,
    render,
)

VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def test_stored_file_matches_generator_byte_for_byte() -> None:
    assert check()
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def test_check_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meteragent.protocol.vectors", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_detects_a_changed_file(tmp_path) -> None:
    broken = tmp_path / "vectors.json"
    broken.write_text(VECTORS_PATH.read_text().replace('"key_id": 1', '"key_id": 9', 1))
    assert not check(broken)


@pytest.mark.parametrize("vec", VECTORS["key_derivation"], ids=lambda v: str(v["key_id"]))
def test_key_derivation_vectors(vec) -> None:
    keys = derive_keys(bytes.fromhex(vec["root_key"]), vec["key_id"])
    assert keys.uplink_key.hex() == vec["uplink_key"]
    assert keys.downlink_key.hex() == vec["downlink_key"]
    assert keys.uplink_nonce_prefix.hex() == vec["uplink_nonce_prefix"]
    assert keys.downlink_nonce_prefix.hex() == vec["downlink_nonce_prefix"]
    assert keys.rekey_salt.hex() == vec["rekey_salt"]


ALL_FRAMES = VECTORS["messages"] + VECTORS["rekey"]["frames"]


@pytest.mark.parametrize("vec", ALL_FRAMES, ids=lambda v: v["name"])
def test_message_vectors_decode_to_the_listed_message(vec) -> None:
    keys = derive_keys(bytes.fromhex(vec["root_key"]), vec["key_id"])
    frame = bytes.fromhex(vec["frame"])
    assert len(frame) == 140
    opened = open_frame(
        frame,
        direction=Direction[vec["direction"]],
        lookup=lambda k: KeyState(keys, ReplayWindow()) if k == vec["key_id"] else None,
    )
    assert opened.header.counter == vec["counter"]
    msg = message_from_json(vec["message"])
    assert opened.message == msg
    assert encode_payload(msg).hex() == vec["plaintext"]


def test_message_vectors_cover_every_type_and_heartbeat() -> None:
    types = {v["message"]["type"] for v in ALL_FRAMES}
    assert types == {"REPORT", "ACK", "REKEY_INIT", "REKEY_ACCEPT", "DEVICE_INFO"}
    assert any(
        v["message"]["type"] == "REPORT" and not v["message"]["readings"] for v in ALL_FRAMES
    )


def test_rekey_vector_is_consistent() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from meteragent.protocol.rekey import derive_next_root

    rk = VECTORS["rekey"]
    old = derive_keys(bytes.fromhex(rk["old_root_key"]), rk["old_key_id"])
    root = derive_next_root(
        X25519PrivateKey.from_private_bytes(bytes.fromhex(rk["meter_private"])),
        bytes.fromhex(rk["server_public"]),
        current=old,
        new_key_id=rk["new_key_id"],
        server_public=bytes.fromhex(rk["server_public"]),
        meter_public=bytes.fromhex(rk["meter_public"]),
    )
    assert root.hex() == rk["new_root_key"] == rk["new_keys"]["root_key"]
    assert old.rekey_salt.hex() == rk["hkdf_salt"]


@pytest.mark.parametrize("vec", VECTORS["negative"], ids=lambda v: v["name"])
def test_negative_vectors_raise_the_listed_error(vec) -> None:
    keys = derive_keys(bytes.fromhex(vec["root_key"]), vec["key_id"])
    window = ReplayWindow.from_tuple(tuple(vec["window"]))
    with pytest.raises(ProtocolError) as info:
        open_frame(
            bytes.fromhex(vec["frame"]),
            direction=Direction[vec["direction"]],
            lookup=lambda k: KeyState(keys, window) if k == vec["key_id"] else None,
        )
    assert type(info.value).__name__ == vec["error"]


def test_negative_vectors_cover_every_decode_error() -> None:
    errors = {v["error"] for v in VECTORS["negative"]}
    assert errors == {
        "AuthenticationFailed",
        "BadVersion",
        "UnknownKeyId",
        "Replay",
        "Stale",
        "Malformed",
        "Oversized",
    }
