"""Byte reader/writer used by the message codecs: bounds-checked, big-endian, strict.

Every read past the end raises :class:`Malformed`, so a parser built on :class:`Reader`
can never leak ``IndexError`` or ``struct.error`` to the caller.
"""

from __future__ import annotations

from meteragent.protocol.errors import Malformed
from meteragent.protocol.varint import decode_uvarint, encode_uvarint, unzigzag, zigzag


class Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    @property
    def data(self) -> bytes:
        """The whole buffer, for a loop that reads many small fields itself (then sets pos)."""
        return self._data

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self._data):
            raise Malformed("truncated field")
        chunk = self._data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def uvarint(self) -> int:
        value, self.pos = decode_uvarint(self._data, self.pos)
        return value

    def svarint(self) -> int:
        return unzigzag(self.uvarint())

    def rest_is_zero_padding(self) -> None:
        # Padding is inside the AEAD, so it is authentic; requiring zeros keeps exactly one
        # valid encoding per message (no covert channel, byte-exact vectors).
        if any(self._data[self.pos :]):
            raise Malformed("non-zero padding")


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> None:
        self.buf += v.to_bytes(1, "big")

    def u16(self, v: int) -> None:
        self.buf += v.to_bytes(2, "big")

    def u32(self, v: int) -> None:
        self.buf += v.to_bytes(4, "big")

    def raw(self, b: bytes) -> None:
        self.buf += b

    def uvarint(self, v: int) -> None:
        self.buf += encode_uvarint(v)

    def svarint(self, v: int) -> None:
        self.buf += encode_uvarint(zigzag(v))
