"""Sealing and opening of 140-byte frames (AES-256-GCM, header as associated data).

Frame layout (every frame, every type, exactly 140 bytes)::

    offset size field
    0      1    version (high nibble, 1) | direction (bit 3) | suite (bits 2..0, 0)
    1      2    key id, big-endian
    3      4    sender counter, big-endian, 1..2**32-1
    7      117  ciphertext of the plaintext (type, body, zero padding)
    124    16   GCM tag

The nonce is ``nonce_prefix(direction, key id) || counter`` (8 + 4 bytes). Opening order:
length, header, key lookup, **tag verification**, replay window, only then payload parsing;
no payload byte is interpreted before the tag has verified (S3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from meteragent.protocol.errors import (
    AuthenticationFailed,
    BadVersion,
    Malformed,
    Oversized,
    UnknownKeyId,
)
from meteragent.protocol.keys import MAX_KEY_ID, Direction, SessionKeys
from meteragent.protocol.messages import (
    FRAME_BYTES,
    HEADER_BYTES,
    PAYLOAD_BYTES,
    Message,
    decode_payload,
    encode_payload,
)
from meteragent.protocol.replay import MAX_COUNTER, ReplayWindow

VERSION = 1
SUITE_AES256GCM_HKDFSHA256_X25519 = 0
_DIRECTION_BIT = 0x08


@dataclass(frozen=True)
class Header:
    """The 7 clear bytes of a frame; authenticated as the AEAD associated data."""

    direction: Direction
    key_id: int
    counter: int
    version: int = VERSION
    suite: int = SUITE_AES256GCM_HKDFSHA256_X25519

    def to_bytes(self) -> bytes:
        first = self.version << 4 | (_DIRECTION_BIT if self.direction else 0) | self.suite
        return bytes([first]) + self.key_id.to_bytes(2, "big") + self.counter.to_bytes(4, "big")


def parse_header(frame: bytes) -> Header:
    """Check the length and the clear header. Raises Oversized, Malformed or BadVersion."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise Malformed("frame must be bytes")
    if len(frame) > FRAME_BYTES:
        raise Oversized(f"frame of {len(frame)} bytes; v1 frames are {FRAME_BYTES}")
    if len(frame) < HEADER_BYTES:
        raise Malformed(f"frame of {len(frame)} bytes; v1 frames are {FRAME_BYTES}")
    first = frame[0]
    version, suite = first >> 4, first & 0x07
    if version != VERSION or suite != SUITE_AES256GCM_HKDFSHA256_X25519:
        raise BadVersion(f"version {version} suite {suite} not supported")
    if len(frame) != FRAME_BYTES:
        raise Malformed(f"frame of {len(frame)} bytes; v1 frames are {FRAME_BYTES}")
    counter = int.from_bytes(frame[3:7], "big")
    if counter == 0:
        raise Malformed("counter 0 is never sent")
    direction = Direction.DOWNLINK if first & _DIRECTION_BIT else Direction.UPLINK
    return Header(direction, int.from_bytes(frame[1:3], "big"), counter)


def nonce_for(keys: SessionKeys, direction: Direction, counter: int) -> bytes:
    """12-byte GCM nonce: per-direction 8-byte prefix from HKDF, then the 4-byte counter."""
    return keys.nonce_prefix(direction) + counter.to_bytes(4, "big")


def seal_frame(message: Message, *, keys: SessionKeys, counter: int) -> bytes:
    """Encrypt ``message`` into one 140-byte frame under ``keys`` with sender ``counter``.

    The direction follows from the message type. ``counter`` must come from a
    :class:`~meteragent.protocol.counters.CounterReservation` and never be reused.
    """
    if not 0 < counter <= MAX_COUNTER:
        raise ValueError(f"counter out of range 1..2**32-1: {counter}")
    if not 0 <= keys.key_id <= MAX_KEY_ID:
        raise ValueError("key id out of range")
    plaintext = encode_payload(message)  # raises Oversized
    return seal_payload(plaintext, keys=keys, direction=message.TYPE.direction, counter=counter)


def seal_payload(
    plaintext: bytes, *, keys: SessionKeys, direction: Direction, counter: int
) -> bytes:
    """Seal an already encoded 117-byte plaintext (for vectors and fuzzing; applications use
    :func:`seal_frame`, which cannot produce an invalid payload)."""
    if len(plaintext) != PAYLOAD_BYTES:
        raise ValueError(f"plaintext must be {PAYLOAD_BYTES} bytes")
    header = Header(direction, keys.key_id, counter).to_bytes()
    sealed = AESGCM(keys.aead_key(direction)).encrypt(
        nonce_for(keys, direction, counter), plaintext, header
    )
    return header + sealed


@dataclass(frozen=True)
class KeyState:
    """What the receiver knows under one key id: the keys and its replay window."""

    keys: SessionKeys
    window: ReplayWindow


KeyLookup = Callable[[int], KeyState | None]


@dataclass(frozen=True)
class Opened:
    """A frame that verified: its header, its message, and the replay window to persist for
    ``header.key_id`` (the window already includes ``header.counter``)."""

    header: Header
    message: Message
    window: ReplayWindow


def open_frame(frame: bytes, *, direction: Direction, lookup: KeyLookup) -> Opened:
    """Verify and decode one frame travelling in ``direction``.

    ``lookup(key_id)`` returns the receiver's :class:`KeyState` for that key id, or None.
    Raises only :class:`~meteragent.protocol.errors.ProtocolError` subclasses. The caller
    must persist ``Opened.window`` before acting on the message (and do both atomically).
    """
    header = parse_header(frame)
    if header.direction is not direction:
        raise Malformed(f"{header.direction.name} frame where {direction.name} was expected")
    state = lookup(header.key_id)
    if state is None:
        raise UnknownKeyId(f"key id {header.key_id} unknown")
    data = bytes(frame)
    try:
        plaintext = AESGCM(state.keys.aead_key(direction)).decrypt(
            nonce_for(state.keys, direction, header.counter),
            data[HEADER_BYTES:],
            data[:HEADER_BYTES],
        )
    except InvalidTag:
        raise AuthenticationFailed("tag does not verify") from None
    # Replay is judged only after authentication, so a forgery is always reported as
    # AuthenticationFailed and Replay/Stale always mean "a genuine frame came again/late".
    window = state.window.accept(header.counter)
    message = decode_payload(plaintext)
    if message.TYPE.direction is not direction:
        raise Malformed("message type does not match the header direction")
    return Opened(header, message, window)


def encode_uplink(message: Message, *, keys: SessionKeys, counter: int) -> bytes:
    """Meter side: seal an uplink message (Report, RekeyAccept or DeviceInfo)."""
    if message.TYPE.direction is not Direction.UPLINK:
        raise ValueError(f"{message.TYPE.name} is not an uplink message")
    return seal_frame(message, keys=keys, counter=counter)


def encode_downlink(message: Message, *, keys: SessionKeys, counter: int) -> bytes:
    """Server side: seal a downlink message (Ack or RekeyInit)."""
    if message.TYPE.direction is not Direction.DOWNLINK:
        raise ValueError(f"{message.TYPE.name} is not a downlink message")
    return seal_frame(message, keys=keys, counter=counter)


def decode_uplink(frame: bytes, lookup: KeyLookup) -> Opened:
    """Server side: verify and decode a frame received from a meter."""
    return open_frame(frame, direction=Direction.UPLINK, lookup=lookup)


def decode_downlink(frame: bytes, lookup: KeyLookup) -> Opened:
    """Meter side: verify and decode a frame received from the server."""
    return open_frame(frame, direction=Direction.DOWNLINK, lookup=lookup)
