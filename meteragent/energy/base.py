"""What every energy source gives the agent: a cumulative Wh reading, or an error, plus events.

Events (an implausible jump, reverse energy, a metering-chip reset, a read error) are never
folded into consumption: the agent stores them as store events and reports them upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Event kinds, stored verbatim as store event types.
EV_READ_ERROR = "energy_read_error"
EV_JUMP = "energy_jump"  # arg: Wh of the implausible step, not counted
EV_REVERSE = "energy_reverse"  # arg: Wh that flowed backwards, not subtracted
EV_CHIP_RESET = "energy_chip_reset"  # the metering IC lost its configuration (brown-out)
EV_GAP = "energy_gap"  # arg: seconds without a read, longer than the register can cover


@dataclass(frozen=True)
class EnergyEvent:
    kind: str
    arg: int = 0


@dataclass(frozen=True)
class EnergyResult:
    """``wh`` is the cumulative reading (never decreasing), or None if it could not be read."""

    wh: int | None
    events: tuple[EnergyEvent, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.wh is not None


class EnergySource(Protocol):
    def read(self, now: float) -> EnergyResult:
        """Read the cumulative energy at ``now`` (unix seconds, passed in by the caller)."""
        ...
