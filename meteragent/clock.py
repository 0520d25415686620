"""The agent's clocks: wall time (what readings are stamped with) and monotonic time (what
deadlines and the ack delay are measured with, S5), behind one interface so tests can run a
full day in seconds.

The agent never sets the operating system's clock (that needs CAP_SYS_TIME, which the
service does not get): a correction from an authenticated ack is kept as an offset on top of
the system clock, persisted by the agent, and applied to every wall-clock read.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

# Before this instant (2025-01-01T00:00:00Z) the system clock is taken as unset: a Pi without
# an RTC boots in 1970 (or at the fake-hwclock's last save) until something sets it.
CLOCK_SANE_AFTER = 1_735_689_600


class Clock(Protocol):
    def time(self) -> float:
        """Wall clock, unix seconds, corrections included."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that no correction moves."""
        ...

    @property
    def is_set(self) -> bool:
        """False while the wall clock is known to be meaningless (cold boot without RTC)."""
        ...

    def step(self, seconds: float) -> None:
        """Move the wall clock by ``seconds`` (an authenticated ack's correction)."""
        ...

    def timeout_until(self, deadline: float) -> float:
        """Real seconds to block waiting for ``deadline`` (a :meth:`monotonic` value)."""
        ...

    def waited_until(self, deadline: float) -> None:
        """A wait for ``deadline`` ended without anything happening."""
        ...


class SystemClock:
    """The real clocks, plus the agent's own correction offset."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self._stepped = False

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    @property
    def is_set(self) -> bool:
        return self._stepped or self.time() >= CLOCK_SANE_AFTER

    def step(self, seconds: float) -> None:
        self.offset += seconds
        self._stepped = True

    def timeout_until(self, deadline: float) -> float:
        return max(0.0, deadline - time.monotonic())

    def waited_until(self, deadline: float) -> None:
        """Nothing to do: real time has passed by itself."""


class FakeClock:
    """Virtual time for tests and simulations: a wait jumps straight to its deadline.

    ``settle`` is the real time a wait still blocks, so that an answer already on its way
    (the fake modem's ``+CMTI`` right after ``+CMGS``) is seen before time jumps ahead.
    """

    def __init__(
        self, wall: float, monotonic: float = 1000.0, *, settle: float = 0.05, is_set: bool = True
    ) -> None:
        self._wall = float(wall)
        self._mono = float(monotonic)
        self.settle = settle
        self._is_set = is_set
        self.steps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    @property
    def is_set(self) -> bool:
        return self._is_set

    def step(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._is_set = True
            self.steps.append(seconds)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of (virtual) time pass on both clocks."""
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def timeout_until(self, deadline: float) -> float:
        return self.settle if deadline > self.monotonic() else 0.0

    def waited_until(self, deadline: float) -> None:
        with self._lock:
            if deadline > self._mono:
                self._wall += deadline - self._mono
                self._mono = deadline
