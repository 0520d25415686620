"""Unsigned LEB128 varints and zigzag mapping for signed values.

Decoding is strict: a varint must use the shortest form and stay within 64 bits, so every
value has exactly one encoding (test vectors are byte-exact, and parsers in other languages
cannot disagree about overlong forms).
"""

from __future__ import annotations

from meteragent.protocol.errors import Malformed

MAX_VARINT_BYTES = 10  # ceil(64 / 7)
MAX_U64 = (1 << 64) - 1


def encode_uvarint(value: int) -> bytes:
    """Encode ``0 <= value < 2**64`` as LEB128 (7 bits per byte, low group first)."""
    if value < 0 or value > MAX_U64:
        raise ValueError(f"uvarint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def uvarint_size(value: int) -> int:
    """Number of bytes :func:`encode_uvarint` produces for ``value``."""
    return max(1, (value.bit_length() + 6) // 7)


def decode_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; return ``(value, next_pos)``. Raises :class:`Malformed`."""
    # One- and two-byte forms first: nearly every field of a report (the readings' deltas).
    if pos + 1 < len(buf):
        first = buf[pos]
        if first < 0x80:
            return first, pos + 1
        second = buf[pos + 1]
        if second < 0x80:
            if second == 0:
                raise Malformed("overlong varint")
            return (first & 0x7F) | (second << 7), pos + 2
    value = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise Malformed("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise Malformed("overlong varint")
            if value > MAX_U64:
                raise Malformed("varint exceeds 64 bits")
            return value, pos + i + 1
        shift += 7
    raise Malformed("varint longer than 10 bytes")


def zigzag(value: int) -> int:
    """Map a signed 64-bit int to unsigned: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ..."""
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"signed value out of 64-bit range: {value}")
    return (value << 1) if value >= 0 else ((-value) << 1) - 1


def unzigzag(value: int) -> int:
    """Inverse of :func:`zigzag`."""
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)
