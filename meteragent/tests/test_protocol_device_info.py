"""DEVICE_INFO (0x03, uplink): the meter's Ed25519 signing key and software version."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meteragent.protocol import (
    AuthenticationFailed,
    BadVersion,
    DeviceInfo,
    Direction,
    KeyState,
    Malformed,
    MessageType,
    ReplayWindow,
    UnknownKeyId,
    decode_uplink,
    derive_keys,
    encode_downlink,
    encode_uplink,
)
from meteragent.protocol.frame import seal_payload
from meteragent.protocol.messages import PAYLOAD_BYTES, decode_payload, encode_payload

KEYS = derive_keys(bytes(range(32)), 7)
PUB = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def lookup(key_id: int) -> KeyState | None:
    return KeyState(KEYS, ReplayWindow()) if key_id == KEYS.key_id else None


def test_layout_is_type_key_length_version_padding() -> None:
    plain = encode_payload(DeviceInfo(PUB, "1.2.3"))
    assert len(plain) == PAYLOAD_BYTES
    assert plain[0] == MessageType.DEVICE_INFO == 0x03
    assert plain[1:33] == PUB
    assert plain[33] == 5 and plain[34:39] == b"1.2.3"
    assert not any(plain[39:])


@settings(max_examples=200)
@given(
    key=st.binary(min_size=32, max_size=32),
    version=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16
    ),
    counter=st.integers(1, 2**32 - 1),
)
def test_round_trip_through_a_frame(key: bytes, version: str, counter: int) -> None:
    msg = DeviceInfo(key, version)
    frame = encode_uplink(msg, keys=KEYS, counter=counter)
    assert len(frame) == 140
    opened = decode_uplink(frame, lookup)
    assert opened.message == msg and opened.header.counter == counter


@pytest.mark.parametrize("position", range(140))
def test_any_bit_flip_is_rejected(position: int) -> None:
    frame = bytearray(encode_uplink(DeviceInfo(PUB, "0.1.0"), keys=KEYS, counter=5))
    frame[position] ^= 0x01
    # The control byte and the key id are checked before the tag; every other bit (counter,
    # ciphertext, tag) is covered by GCM and must fail authentication.
    expected = {0: (BadVersion, Malformed), 1: UnknownKeyId, 2: UnknownKeyId}.get(
        position, AuthenticationFailed
    )
    with pytest.raises(expected):
        decode_uplink(bytes(frame), lookup)


def test_it_is_an_uplink_only_message() -> None:
    with pytest.raises(ValueError):
        encode_downlink(DeviceInfo(PUB, "1"), keys=KEYS, counter=1)
    assert MessageType.DEVICE_INFO.direction is Direction.UPLINK


@pytest.mark.parametrize(
    ("key", "version"),
    [(PUB[:31], "1"), (PUB + b"\0", "1"), (PUB, ""), (PUB, "x" * 17), (PUB, "1 0"),
     (PUB, "1.0\n"), (PUB, "é")],
)  # fmt: skip
def test_invalid_fields_are_refused_when_building(key: bytes, version: str) -> None:
    with pytest.raises(ValueError):
        DeviceInfo(key, version)


def _authentic(plain: bytes) -> bytes:
    return seal_payload(plain, keys=KEYS, direction=Direction.UPLINK, counter=9)


@pytest.mark.parametrize(
    "body",
    [
        PUB + bytes([0]),  # empty version
        PUB + bytes([17]) + b"x" * 17,  # too long
        PUB + bytes([3]) + b"1\x002",  # control character
        PUB + bytes([2]) + b"\xc3\xa9",  # non-ASCII
        PUB + bytes([5]) + b"1.0",  # length beyond the data is zero padding: "1.0\0\0"
    ],
)
def test_authentic_but_invalid_payload_is_malformed(body: bytes) -> None:
    plain = bytes([0x03]) + body
    plain += bytes(PAYLOAD_BYTES - len(plain))
    with pytest.raises(Malformed):
        decode_payload(plain)
    with pytest.raises(Malformed):
        decode_uplink(_authentic(plain), lookup)


def test_trailing_garbage_after_the_version_is_malformed() -> None:
    plain = bytearray(encode_payload(DeviceInfo(PUB, "1.0")))
    plain[40] = 1
    with pytest.raises(Malformed):
        decode_payload(bytes(plain))
