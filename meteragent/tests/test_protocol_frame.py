"""Frames: round trips for every message type, tamper detection, header errors."""

from __future__ import annotations

import pytest

from meteragent.protocol import (
    FRAME_BYTES,
    Ack,
    AuthenticationFailed,
    BadVersion,
    Direction,
    DisplayCode,
    Event,
    EventKind,
    KeyState,
    Malformed,
    Oversized,
    ProtocolError,
    Reading,
    RekeyAccept,
    RekeyInit,
    ReplayWindow,
    Report,
    Schedule,
    UnknownKeyId,
    decode_downlink,
    decode_uplink,
    derive_keys,
    encode_downlink,
    encode_uplink,
    open_frame,
    parse_header,
    seal_frame,
)
from meteragent.protocol.frame import seal_payload
from meteragent.protocol.messages import PAYLOAD_BYTES, encode_payload

ROOT = bytes(range(32))
KEYS = derive_keys(ROOT, 7)
T0 = 1_767_225_600
H0 = T0 // 3600


def lookup(window: ReplayWindow = ReplayWindow()):  # noqa: B008 - immutable default
    return lambda key_id: KeyState(KEYS, window) if key_id == KEYS.key_id else None


def day(start_wh: int = 5_000_000) -> tuple[Reading, ...]:
    return tuple(Reading(H0 + i, start_wh + i * 900) for i in range(24))


MESSAGES = [
    Report(T0 + 86_400, day()),
    Report(T0 + 86_400),  # heartbeat
    Report(
        T0 + 86_400,
        (Reading(H0, 10), Reading(H0 + 3, 5), Reading(H0 + 4, 5)),
        (Event(EventKind.TAMPER, T0 + 600, 2), Event(EventKind.CLOCK_STEP, T0, -900)),
        remaining=3,
    ),
    RekeyAccept(12, 8, bytes(range(100, 132))),
    Ack(5, H0 + 23, T0 + 86_500),
    Ack(6, None, T0, DisplayCode("000123"), H0 - 5, Schedule(0, 1439, 60)),
    RekeyInit(8, bytes(range(32, 64))),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_every_message_type(msg) -> None:
    frame = seal_frame(msg, keys=KEYS, counter=42)
    assert len(frame) == FRAME_BYTES
    opened = open_frame(frame, direction=msg.TYPE.direction, lookup=lookup())
    assert opened.message == msg
    assert opened.header.counter == 42
    assert opened.header.key_id == 7
    assert opened.window.to_tuple() == (42, 1)


def test_heartbeat_is_a_report_without_readings() -> None:
    assert Report(T0).is_heartbeat
    assert not MESSAGES[0].is_heartbeat


def test_every_frame_is_140_bytes_whatever_the_content() -> None:
    sizes = {len(seal_frame(m, keys=KEYS, counter=1)) for m in MESSAGES}
    assert sizes == {140}


def test_nothing_identifying_in_clear() -> None:
    msg = Report(T0, (Reading(H0, 0x11223344),))
    frame = seal_frame(msg, keys=KEYS, counter=1)
    assert frame[:7] == bytes([0x10, 0x00, 0x07, 0, 0, 0, 1])
    assert (0x11223344).to_bytes(4, "big") not in frame
    assert H0.to_bytes(4, "big") not in frame


def test_encode_side_helpers_refuse_the_wrong_direction() -> None:
    with pytest.raises(ValueError):
        encode_uplink(MESSAGES[4], keys=KEYS, counter=1)
    with pytest.raises(ValueError):
        encode_downlink(MESSAGES[0], keys=KEYS, counter=1)
    up = encode_uplink(MESSAGES[0], keys=KEYS, counter=1)
    down = encode_downlink(MESSAGES[4], keys=KEYS, counter=1)
    assert decode_uplink(up, lookup()).message == MESSAGES[0]
    assert decode_downlink(down, lookup()).message == MESSAGES[4]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_single_bit_flip_is_rejected(msg) -> None:
    frame = seal_frame(msg, keys=KEYS, counter=1000)
    direction = msg.TYPE.direction
    for bit in range(len(frame) * 8):
        mutated = bytearray(frame)
        mutated[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProtocolError):
            open_frame(bytes(mutated), direction=direction, lookup=lookup())


def test_bit_flip_errors_by_region() -> None:
    frame = seal_frame(MESSAGES[0], keys=KEYS, counter=1000)

    def err(pos: int, mask: int) -> type[ProtocolError]:
        mutated = bytearray(frame)
        mutated[pos] ^= mask
        with pytest.raises(ProtocolError) as info:
            decode_uplink(bytes(mutated), lookup())
        return type(info.value)

    assert err(0, 0x10) is BadVersion  # version nibble
    assert err(0, 0x01) is BadVersion  # suite bits
    assert err(0, 0x08) is Malformed  # direction bit: a downlink frame on the uplink path
    assert err(2, 0x01) is UnknownKeyId
    assert err(6, 0x01) is AuthenticationFailed  # counter is AAD
    assert err(50, 0x80) is AuthenticationFailed
    assert err(139, 0x01) is AuthenticationFailed


def test_wrong_direction_keys_do_not_open() -> None:
    # An uplink frame reflected back to the meter fails: other direction bit, other key.
    frame = bytearray(seal_frame(MESSAGES[0], keys=KEYS, counter=5))
    frame[0] |= 0x08
    with pytest.raises(AuthenticationFailed):
        decode_downlink(bytes(frame), lookup())


def test_other_meter_key_fails_authentication() -> None:
    other = derive_keys(bytes(32), 7)
    frame = seal_frame(MESSAGES[0], keys=other, counter=5)
    with pytest.raises(AuthenticationFailed):
        decode_uplink(frame, lookup())


def test_length_errors() -> None:
    frame = seal_frame(MESSAGES[0], keys=KEYS, counter=5)
    with pytest.raises(Oversized):
        decode_uplink(frame + b"\0", lookup())
    with pytest.raises(Malformed):
        decode_uplink(frame[:-1], lookup())
    with pytest.raises(Malformed):
        decode_uplink(b"", lookup())
    with pytest.raises(Malformed):
        decode_uplink("not bytes", lookup())  # type: ignore[arg-type]


def test_counter_zero_is_never_accepted() -> None:
    with pytest.raises(ValueError):
        seal_frame(MESSAGES[0], keys=KEYS, counter=0)
    frame = bytearray(seal_frame(MESSAGES[0], keys=KEYS, counter=1))
    frame[3:7] = bytes(4)
    with pytest.raises(Malformed):
        decode_uplink(bytes(frame), lookup())


def test_parse_header_fields() -> None:
    frame = seal_frame(MESSAGES[4], keys=derive_keys(ROOT, 0x1234), counter=0xA0B0C0D0)
    header = parse_header(frame)
    assert header.direction is Direction.DOWNLINK
    assert (header.key_id, header.counter, header.version) == (0x1234, 0xA0B0C0D0, 1)
    assert frame[0] == 0x18


def test_authentic_but_invalid_payloads_are_malformed() -> None:
    good = bytearray(encode_payload(Report(T0)))
    cases = []
    padded = bytearray(good)
    padded[-1] = 1
    cases.append(bytes(padded))
    unknown_type = bytearray(good)
    unknown_type[0] = 0x7F
    cases.append(bytes(unknown_type))
    for pt in cases:
        frame = seal_payload(pt, keys=KEYS, direction=Direction.UPLINK, counter=3)
        with pytest.raises(Malformed):
            decode_uplink(frame, lookup())
    # A downlink type inside an uplink frame: the sender is broken, refuse it.
    frame = seal_payload(
        encode_payload(MESSAGES[4]), keys=KEYS, direction=Direction.UPLINK, counter=4
    )
    with pytest.raises(Malformed):
        decode_uplink(frame, lookup())


def test_message_that_does_not_fit_is_oversized() -> None:
    too_many = tuple(Reading(H0 + i, i * 1_000_000) for i in range(60))
    with pytest.raises(Oversized):
        seal_frame(Report(T0 + 100 * 3600, too_many), keys=KEYS, counter=1)


def test_malformed_padding_never_reaches_parser_before_tag() -> None:
    # Same bytes as a valid Malformed-payload frame but with a broken tag: the tag wins.
    padded = bytearray(encode_payload(Report(T0)))
    padded[-1] = 1
    frame = bytearray(seal_payload(bytes(padded), keys=KEYS, direction=Direction.UPLINK, counter=3))
    frame[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        decode_uplink(bytes(frame), lookup())
    assert len(padded) == PAYLOAD_BYTES


def test_message_validation() -> None:
    with pytest.raises(ValueError):
        DisplayCode("12345")
    with pytest.raises(ValueError):
        DisplayCode("12a456")
    with pytest.raises(ValueError):
        Schedule(1440, 0, 0)
    with pytest.raises(ValueError):
        Ack(0, None, T0)
    with pytest.raises(ValueError):
        RekeyInit(1, b"short")
    with pytest.raises(ValueError):
        Report(T0, (Reading(H0 + 1, 5), Reading(H0, 6)))
    with pytest.raises(ValueError):
        Report(T0, events=(Event(EventKind.REBOOT, T0 + 120),))
    with pytest.raises(ValueError):
        Event(EventKind.REBOOT, T0 + 1)


def test_display_code_keeps_leading_zeros() -> None:
    msg = Ack(1, None, T0, DisplayCode("00000042"))
    opened = decode_downlink(seal_frame(msg, keys=KEYS, counter=9), lookup())
    assert opened.message.display_code == DisplayCode("00000042")
