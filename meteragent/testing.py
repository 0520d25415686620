"""Test helpers shared by the meter agent's tests (no test framework imported here)."""

from __future__ import annotations

from meteragent.clock import FakeClock
from meteragent.protocol.frame import parse_header
from meteragent.transport import Incoming


class NonceReuse(AssertionError):
    """One (key id, counter) left the meter with two different frames."""


class RecordingNetwork:
    """A :class:`~meteragent.transport.Transport` standing in for the SMS network: it keeps
    every frame sent, by (key id, counter), and raises :class:`NonceReuse` when a pair comes
    with a second, different frame. Waiting jumps the fake clock to the deadline."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: dict[tuple[int, int], bytes] = {}
        self.frames: list[bytes] = []

    def send(self, to: str, payload: bytes) -> None:
        header = parse_header(payload)
        pair = (header.key_id, header.counter)
        earlier = self.sent.setdefault(pair, payload)
        self.frames.append(payload)
        if earlier != payload:
            raise NonceReuse(f"key id {pair[0]} counter {pair[1]} sent with two different frames")

    def wait(self, deadline: float) -> Incoming | None:
        self.clock.waited_until(deadline)
        return None

    def interrupt(self) -> None:
        """Nothing blocks."""

    def close(self) -> None:
        """Nothing to release."""
