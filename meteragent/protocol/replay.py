"""Receiver-side anti-replay: highest counter seen plus a 64-bit bitmap (RFC 4303 3.4.3).

SMS arrive out of order, so a plain "must be greater than the last" rule (DLMS) would drop
genuine messages; the window accepts each counter once as long as it is no more than 63
behind the highest seen, and rejects everything older as :class:`Stale`.

The state is an immutable value that round-trips through ``(int, int)`` so the server can
keep it in two columns of the meter's key row and update it in the same transaction that
stores the readings.
"""

from __future__ import annotations

from dataclasses import dataclass

from meteragent.protocol.errors import Replay, Stale

WINDOW_SIZE = 64
MAX_COUNTER = 0xFFFF_FFFF
_MASK = (1 << WINDOW_SIZE) - 1


@dataclass(frozen=True)
class ReplayWindow:
    """``highest``: largest accepted counter (0 = none yet); bit ``i`` of ``bitmap``: counter
    ``highest - i`` was accepted."""

    highest: int = 0
    bitmap: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.highest <= MAX_COUNTER or not 0 <= self.bitmap <= _MASK:
            raise ValueError("replay window state out of range")
        if self.highest == 0 and self.bitmap:
            raise ValueError("empty window cannot have bits set")

    def check(self, counter: int) -> None:
        """Raise :class:`Replay` or :class:`Stale` if ``counter`` must not be accepted."""
        if counter > self.highest:
            return
        offset = self.highest - counter
        if offset >= WINDOW_SIZE:
            raise Stale(f"counter {counter} is older than the window (highest {self.highest})")
        if self.bitmap >> offset & 1:
            raise Replay(f"counter {counter} was already accepted")

    def accept(self, counter: int) -> ReplayWindow:
        """Check ``counter`` and return the window with it marked as seen."""
        if not 0 < counter <= MAX_COUNTER:
            raise ValueError(f"counter out of range: {counter}")
        self.check(counter)
        if counter > self.highest:
            shift = counter - self.highest
            bitmap = ((self.bitmap << shift) | 1) & _MASK if shift < WINDOW_SIZE else 1
            return ReplayWindow(counter, bitmap)
        return ReplayWindow(self.highest, self.bitmap | 1 << (self.highest - counter))

    def to_tuple(self) -> tuple[int, int]:
        """``(highest, bitmap)``, both unsigned (bitmap < 2**64)."""
        return self.highest, self.bitmap

    @classmethod
    def from_tuple(cls, state: tuple[int, int]) -> ReplayWindow:
        return cls(*state)
