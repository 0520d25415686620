"""The v1 message types and their plaintext encoding (the bytes inside the AEAD).

Plaintext layout, always exactly :data:`PAYLOAD_BYTES` (117) bytes::

    type (u8) | body (per type) | zero padding up to 117 bytes

The type byte is inside the ciphertext, so an observer cannot tell a report from a rekey
message (S6, PC02). Its top bit is the direction (0x0_ uplink, 0x8_ downlink); the frame
layer checks it against the direction bit of the authenticated header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple

from meteragent.protocol.codec import Reader, Writer
from meteragent.protocol.errors import Malformed, Oversized
from meteragent.protocol.keys import MAX_KEY_ID, Direction
from meteragent.protocol.readings import (
    MAX_HOUR,
    MAX_ITEMS,
    Event,
    Reading,
    check_events,
    check_readings,
    read_events,
    read_readings,
    write_events,
    write_readings,
)

FRAME_BYTES = 140  # one single-part 8-bit SMS, no UDH
HEADER_BYTES = 7
TAG_BYTES = 16
PAYLOAD_BYTES = FRAME_BYTES - HEADER_BYTES - TAG_BYTES  # 117
MAX_U32 = 0xFFFF_FFFF
PUBLIC_KEY_BYTES = 32
MINUTES_PER_DAY = 1440
MAX_VERSION_BYTES = 16
# Printable ASCII without space: a version is a token ("1.4.2", "2026.01-rc1"), never prose.
_VERSION = re.compile(r"[\x21-\x7e]{1,16}")


class MessageType(IntEnum):
    REPORT = 0x01  # uplink: readings and events (no readings: heartbeat)
    REKEY_ACCEPT = 0x02  # uplink: the meter's half of the key agreement
    DEVICE_INFO = 0x03  # uplink: the meter's Ed25519 signing key and software version
    ACK = 0x81  # downlink: high-water mark, server time, optional commands
    REKEY_INIT = 0x82  # downlink: the server's half of the key agreement

    @property
    def direction(self) -> Direction:
        return Direction.DOWNLINK if self.value & 0x80 else Direction.UPLINK


def _u32(name: str, value: int, *, allow_zero: bool = True) -> None:
    if not (0 if allow_zero else 1) <= value <= MAX_U32:
        raise ValueError(f"{name} out of uint32 range: {value}")


@dataclass(frozen=True)
class Report:
    """Uplink: hourly readings not yet acknowledged, plus events. No readings = heartbeat.

    ``sent_at`` is the meter's clock (unix seconds) when it built the report; ``remaining``
    is how many more frames of the same batch follow this one (0 = last frame).
    """

    TYPE: ClassVar[MessageType] = MessageType.REPORT

    sent_at: int
    readings: tuple[Reading, ...] = ()
    events: tuple[Event, ...] = ()
    remaining: int = 0

    def __post_init__(self) -> None:
        _u32("sent_at", self.sent_at)
        if not 0 <= self.remaining <= MAX_ITEMS:
            raise ValueError("remaining must fit in one byte")
        object.__setattr__(self, "readings", tuple(self.readings))
        object.__setattr__(self, "events", tuple(self.events))
        check_readings(self.readings)
        check_events(self.events, self.sent_at)

    @property
    def is_heartbeat(self) -> bool:
        return not self.readings


@dataclass(frozen=True)
class DisplayCode:
    """Command: show a 6-8 digit one-time code on the meter's LCD (leading zeros kept)."""

    code: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{6,8}", self.code):
            raise ValueError("display code must be 6 to 8 ASCII digits")


@dataclass(frozen=True)
class Schedule:
    """Command: send reports at two minutes-of-day (UTC) plus a random delay in the jitter."""

    first_minute: int
    second_minute: int
    jitter_minutes: int

    def __post_init__(self) -> None:
        for value in (self.first_minute, self.second_minute, self.jitter_minutes):
            if not 0 <= value < MINUTES_PER_DAY:
                raise ValueError("schedule minutes must be in 0..1439")


class CommandTag(IntEnum):
    DISPLAY_CODE = 1
    RESEND_FROM = 2
    SET_SCHEDULE = 3


@dataclass(frozen=True)
class Ack:
    """Downlink: answers uplink ``answers_counter``; readings up to and including
    ``acked_through_hour`` are safely stored (None: nothing yet); ``server_time`` is unix
    seconds when the server built the ack; optional commands follow."""

    TYPE: ClassVar[MessageType] = MessageType.ACK

    answers_counter: int
    acked_through_hour: int | None
    server_time: int
    display_code: DisplayCode | None = None
    resend_from_hour: int | None = None
    schedule: Schedule | None = None

    def __post_init__(self) -> None:
        _u32("answers_counter", self.answers_counter, allow_zero=False)
        if self.acked_through_hour is not None and not 0 < self.acked_through_hour <= MAX_HOUR:
            raise ValueError("acked_through_hour out of range")
        _u32("server_time", self.server_time)
        if self.resend_from_hour is not None and not 0 < self.resend_from_hour <= MAX_HOUR:
            raise ValueError("resend_from_hour out of range")


@dataclass(frozen=True)
class RekeyInit:
    """Downlink: start an over-the-air rekey to ``new_key_id`` with the server's ephemeral
    X25519 public key."""

    TYPE: ClassVar[MessageType] = MessageType.REKEY_INIT

    new_key_id: int
    server_public: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.new_key_id <= MAX_KEY_ID:
            raise ValueError("new_key_id out of range")
        if len(self.server_public) != PUBLIC_KEY_BYTES:
            raise ValueError("X25519 public key must be 32 bytes")


@dataclass(frozen=True)
class RekeyAccept:
    """Uplink: the meter's ephemeral X25519 public key for ``new_key_id``, answering the
    REKEY_INIT that arrived with downlink counter ``answers_counter``."""

    TYPE: ClassVar[MessageType] = MessageType.REKEY_ACCEPT

    answers_counter: int
    new_key_id: int
    meter_public: bytes

    def __post_init__(self) -> None:
        _u32("answers_counter", self.answers_counter, allow_zero=False)
        if not 0 <= self.new_key_id <= MAX_KEY_ID:
            raise ValueError("new_key_id out of range")
        if len(self.meter_public) != PUBLIC_KEY_BYTES:
            raise ValueError("X25519 public key must be 32 bytes")


@dataclass(frozen=True)
class DeviceInfo:
    """Uplink: the meter's own Ed25519 public key (it signs SD-card exports, PC08) and the
    software version it runs. Sent after provisioning and whenever the version changes."""

    TYPE: ClassVar[MessageType] = MessageType.DEVICE_INFO

    signing_public: bytes
    software_version: str

    def __post_init__(self) -> None:
        if not isinstance(self.signing_public, bytes) or len(self.signing_public) != 32:
            raise ValueError("Ed25519 public key must be 32 bytes")
        if not isinstance(self.software_version, str) or not _VERSION.fullmatch(
            self.software_version
        ):
            raise ValueError("software version must be 1-16 printable ASCII characters, no space")


Message = Report | Ack | RekeyInit | RekeyAccept | DeviceInfo


def _write_report(w: Writer, msg: Report) -> None:
    w.u32(msg.sent_at)
    w.u8(msg.remaining)
    write_events(w, msg.events, msg.sent_at)
    write_readings(w, msg.readings)


def _write_ack(w: Writer, msg: Ack) -> None:
    w.u32(msg.answers_counter)
    w.u32(msg.acked_through_hour or 0)
    w.u32(msg.server_time)
    commands = Writer()
    count = 0
    if msg.display_code is not None:
        commands.u8(CommandTag.DISPLAY_CODE)
        commands.u8(len(msg.display_code.code))
        commands.u32(int(msg.display_code.code))
        count += 1
    if msg.resend_from_hour is not None:
        commands.u8(CommandTag.RESEND_FROM)
        commands.u32(msg.resend_from_hour)
        count += 1
    if msg.schedule is not None:
        commands.u8(CommandTag.SET_SCHEDULE)
        commands.u16(msg.schedule.first_minute)
        commands.u16(msg.schedule.second_minute)
        commands.u16(msg.schedule.jitter_minutes)
        count += 1
    w.u8(count)
    w.raw(bytes(commands.buf))


def _write_rekey_init(w: Writer, msg: RekeyInit) -> None:
    w.u16(msg.new_key_id)
    w.raw(msg.server_public)


def _write_rekey_accept(w: Writer, msg: RekeyAccept) -> None:
    w.u32(msg.answers_counter)
    w.u16(msg.new_key_id)
    w.raw(msg.meter_public)


def _write_device_info(w: Writer, msg: DeviceInfo) -> None:
    version = msg.software_version.encode("ascii")
    w.raw(msg.signing_public)
    w.u8(len(version))
    w.raw(version)


def _write_body(w: Writer, msg: Message) -> None:
    try:
        codec = MESSAGE_TYPES[msg.TYPE]
    except (AttributeError, KeyError):  # pragma: no cover - guarded by the type checker
        raise TypeError(f"not a protocol message: {msg!r}") from None
    codec.encode(w, msg)


def body_size(msg: Message) -> int:
    """Bytes the message needs inside the plaintext, type byte included."""
    w = Writer()
    _write_body(w, msg)
    return 1 + len(w.buf)


def encode_payload(msg: Message) -> bytes:
    """The 117-byte plaintext of ``msg``: type, body, zero padding. Raises Oversized."""
    w = Writer()
    w.u8(msg.TYPE)
    _write_body(w, msg)
    if len(w.buf) > PAYLOAD_BYTES:
        raise Oversized(f"{msg.TYPE.name} needs {len(w.buf)} bytes, a frame holds {PAYLOAD_BYTES}")
    return bytes(w.buf) + bytes(PAYLOAD_BYTES - len(w.buf))


def _read_report(r: Reader) -> Report:
    sent_at = r.u32()
    remaining = r.u8()
    events = read_events(r, sent_at)
    return Report(sent_at, read_readings(r), events, remaining)


def _read_ack(r: Reader) -> Ack:
    answers = r.u32()
    acked = r.u32()
    server_time = r.u32()
    display = resend = schedule = None
    last_tag = 0
    for _ in range(r.u8()):
        tag = r.u8()
        if tag <= last_tag:
            raise Malformed("commands must appear once each, in ascending tag order")
        last_tag = tag
        if tag == CommandTag.DISPLAY_CODE:
            digits, value = r.u8(), r.u32()
            if not 6 <= digits <= 8 or value >= 10**digits:
                raise Malformed("bad display code")
            display = DisplayCode(str(value).zfill(digits))
        elif tag == CommandTag.RESEND_FROM:
            resend = r.u32()
            if resend == 0:
                raise Malformed("resend hour 0")
        elif tag == CommandTag.SET_SCHEDULE:
            schedule = Schedule(r.u16(), r.u16(), r.u16())
        else:
            raise Malformed(f"unknown command tag {tag}")
    return Ack(answers, acked or None, server_time, display, resend, schedule)


def _read_rekey_init(r: Reader) -> RekeyInit:
    return RekeyInit(r.u16(), r.raw(PUBLIC_KEY_BYTES))


def _read_rekey_accept(r: Reader) -> RekeyAccept:
    return RekeyAccept(r.u32(), r.u16(), r.raw(PUBLIC_KEY_BYTES))


def _read_device_info(r: Reader) -> DeviceInfo:
    signing_public = r.raw(PUBLIC_KEY_BYTES)
    length = r.u8()
    if not 1 <= length <= MAX_VERSION_BYTES:
        raise Malformed("software version length must be 1..16")
    # latin-1 maps every byte to one character; the dataclass then refuses non-ASCII.
    return DeviceInfo(signing_public, r.raw(length).decode("latin-1"))


class MessageCodec(NamedTuple):
    """How one message type is written and read (the body after the type byte)."""

    cls: type
    encode: Callable[[Writer, Any], None]
    decode: Callable[[Reader], Message]


# Every v1 message type: its class, body writer and body reader. A new type is one line here.
MESSAGE_TYPES: dict[MessageType, MessageCodec] = {
    MessageType.REPORT: MessageCodec(Report, _write_report, _read_report),
    MessageType.REKEY_ACCEPT: MessageCodec(RekeyAccept, _write_rekey_accept, _read_rekey_accept),
    MessageType.DEVICE_INFO: MessageCodec(DeviceInfo, _write_device_info, _read_device_info),
    MessageType.ACK: MessageCodec(Ack, _write_ack, _read_ack),
    MessageType.REKEY_INIT: MessageCodec(RekeyInit, _write_rekey_init, _read_rekey_init),
}


def decode_payload(plaintext: bytes) -> Message:
    """Parse an authenticated plaintext. Raises only :class:`Malformed`."""
    if len(plaintext) != PAYLOAD_BYTES:
        raise Malformed("plaintext has the wrong length")
    r = Reader(plaintext)
    type_byte = r.u8()
    try:
        msg_type = MessageType(type_byte)
    except ValueError:
        raise Malformed(f"unknown message type 0x{type_byte:02x}") from None
    try:
        msg = MESSAGE_TYPES[msg_type].decode(r)
    except ValueError as exc:  # a field the dataclass refuses: authentic but not valid v1
        raise Malformed(str(exc)) from None
    r.rest_is_zero_padding()
    return msg
