"""Analog Devices ADE7953 single-phase energy metering IC on I²C (address 0x38).

Register map (ADE7953 data sheet, Rev. C, Tables 16-25): 16-bit register addresses; the width
follows the address range: 0x0xx 8-bit, 0x1xx 16-bit, 0x2xx 24-bit, 0x3xx the same 24-bit
registers read as 32 bits (sign-extended). An I²C read is a write of the two address bytes (MSB
first) followed by a repeated-start read of the register, MSB first.

Registers used here:

* ``LCYCMODE`` 0x004 (8-bit, default 0x40): bit 6 ``RSTREAD`` makes energy registers reset on
  read. We clear it: with read-with-reset an I²C read whose answer is lost loses that energy,
  while a free-running register only needs wrap handling.
* ``AENERGYA`` 0x21E / 0x31E: active energy, current channel A, 24-bit signed accumulator that
  rolls over. Read through the 32-bit address and reduced modulo 2**24.
* ``0xFE`` unlock (write 0xAD) then ``0x120`` = 0x0030: the data sheet's required setting
  for specified performance.
* ``VERSION`` 0x702 (8-bit): silicon version, read once to check a chip is there.

Because LCYCMODE returns to its default after a brown-out, reading it back on every read tells
us the chip was reset and its accumulator restarted from zero.
"""

from __future__ import annotations

import importlib
from fractions import Fraction
from typing import Any, Protocol

from .base import (
    EV_CHIP_RESET,
    EV_GAP,
    EV_JUMP,
    EV_READ_ERROR,
    EV_REVERSE,
    EnergyEvent,
    EnergyResult,
)

I2C_ADDRESS = 0x38
REG_LCYCMODE = 0x004
REG_UNLOCK = 0x0FE
REG_RESERVED_120 = 0x120
REG_AENERGYA_32 = 0x31E
REG_VERSION = 0x702

LCYCMODE_DEFAULT = 0x40
RSTREAD = 0x40
LCYCMODE_OURS = LCYCMODE_DEFAULT & ~RSTREAD
UNLOCK_KEY = 0xAD
RESERVED_120_VALUE = 0x0030

ACC_BITS = 24  # the energy accumulator's real width


def register_width(addr: int) -> int:
    """Bytes of a register, from its address range."""
    page = addr >> 8
    return {0: 1, 1: 2, 2: 3, 3: 4}.get(page, 1)


class I2CBus(Protocol):
    """The part of ``smbus2.SMBus`` we use: combined write/read transactions."""

    def i2c_rdwr(self, *msgs: Any) -> None: ...


def _i2c_msg() -> Any:
    # Imported lazily so this module (and the simulated source) works without smbus2.
    return importlib.import_module("smbus2").i2c_msg


class Ade7953:
    """Register access to one ADE7953."""

    def __init__(self, bus: I2CBus, address: int = I2C_ADDRESS) -> None:
        self.bus = bus
        self.address = address

    @classmethod
    def open(cls, bus_number: int = 1, address: int = I2C_ADDRESS) -> Ade7953:
        smbus2 = importlib.import_module("smbus2")
        return cls(smbus2.SMBus(bus_number), address)

    def read(self, reg: int) -> int:
        """Unsigned value of ``reg``; OSError on bus failure."""
        msg = _i2c_msg()
        n = register_width(reg)
        w = msg.write(self.address, [reg >> 8, reg & 0xFF])
        r = msg.read(self.address, n)
        self.bus.i2c_rdwr(w, r)
        data = bytes(r)
        if len(data) != n:
            raise OSError(f"short read from register {reg:#x}")
        return int.from_bytes(data, "big")

    def write(self, reg: int, value: int) -> None:
        n = register_width(reg)
        payload = [reg >> 8, reg & 0xFF, *value.to_bytes(n, "big")]
        self.bus.i2c_rdwr(_i2c_msg().write(self.address, payload))

    def configure(self) -> None:
        self.write(REG_UNLOCK, UNLOCK_KEY)
        self.write(REG_RESERVED_120, RESERVED_120_VALUE)
        self.write(REG_LCYCMODE, LCYCMODE_OURS)
        if self.read(REG_LCYCMODE) != LCYCMODE_OURS:
            raise OSError("LCYCMODE did not take our configuration")


class Ade7953EnergySource:
    """Cumulative Wh from the free-running ADE7953 accumulator.

    ``lsb_per_wh`` is the board's calibration (accumulator LSBs per Wh). ``baseline_wh`` and
    ``baseline_raw`` restore the state persisted at the last hourly write, so energy used
    while the agent was down (the chip keeps counting) is not lost.
    """

    def __init__(
        self,
        chip: Ade7953,
        *,
        lsb_per_wh: int | Fraction,
        baseline_wh: int = 0,
        baseline_raw: int | None = None,
        baseline_time: float | None = None,
        max_power_w: float = 23_000.0,  # 100 A at 230 V: the service fuse limit
        retries: int = 3,
    ) -> None:
        if lsb_per_wh <= 0:
            raise ValueError("lsb_per_wh must be positive")
        self.chip = chip
        self.lsb_per_wh = Fraction(lsb_per_wh)
        self.max_power_w = max_power_w
        self.retries = retries
        self._wh0 = baseline_wh
        self._lsb = 0  # LSBs counted since the baseline
        self._raw = baseline_raw
        self._t = baseline_time
        self._configured = False

    @property
    def state(self) -> tuple[int, int | None]:
        """(cumulative Wh, last raw accumulator value): persist these with each reading."""
        return self.cumulative_wh, self._raw

    @property
    def cumulative_wh(self) -> int:
        return self._wh0 + int(self._lsb // self.lsb_per_wh)

    def max_read_interval(self) -> float:
        """Seconds at full power before the 24-bit accumulator could wrap ambiguously."""
        half_range_wh = Fraction(2 ** (ACC_BITS - 1)) / self.lsb_per_wh
        return float(half_range_wh) / self.max_power_w * 3600

    def _read_raw(self) -> tuple[int, int]:
        last: OSError | None = None
        for _ in range(self.retries):
            try:
                if not self._configured:
                    self.chip.configure()
                    self._configured = True
                mode = self.chip.read(REG_LCYCMODE)
                raw = self.chip.read(REG_AENERGYA_32) % (1 << ACC_BITS)
                return mode, raw
            except OSError as exc:
                last = exc
        raise OSError(f"ADE7953 unreadable after {self.retries} attempts: {last}")

    def read(self, now: float) -> EnergyResult:
        try:
            mode, raw = self._read_raw()
        except OSError as exc:
            return EnergyResult(None, (EnergyEvent(EV_READ_ERROR),), str(exc))
        events: list[EnergyEvent] = []
        if mode != LCYCMODE_OURS:
            # Brown-out: the chip restarted with defaults and a zeroed accumulator. What it
            # counted since then cannot be tied to our baseline; report it, start afresh.
            events.append(EnergyEvent(EV_CHIP_RESET, int(self._signed(raw) // self.lsb_per_wh)))
            self._configured = False
            try:
                self.chip.configure()
                self._configured = True
            except OSError as exc:
                return EnergyResult(None, (*events, EnergyEvent(EV_READ_ERROR)), str(exc))
            self._raw, self._t = raw, now
            return EnergyResult(self.cumulative_wh, tuple(events))
        if self._raw is None or self._t is None:
            self._raw, self._t = raw, now
            return EnergyResult(self.cumulative_wh)
        dt = max(0.0, now - self._t)
        delta = self._signed((raw - self._raw) % (1 << ACC_BITS))
        self._raw, self._t = raw, now
        if dt > self.max_read_interval():
            # The register may have wrapped more than once; the count is ambiguous.
            events.append(EnergyEvent(EV_GAP, int(dt)))
            return EnergyResult(self.cumulative_wh, tuple(events))
        delta_wh = Fraction(delta) / self.lsb_per_wh
        if delta < 0:
            if -delta_wh >= 1:
                events.append(EnergyEvent(EV_REVERSE, int(-delta_wh)))
            return EnergyResult(self.cumulative_wh, tuple(events))
        limit_wh = self.max_power_w * dt / 3600 * 1.05 + 1  # 5 % and 1 Wh of slack
        if delta_wh > limit_wh:
            # Physically impossible through this meter: a glitch or a forged feed.
            events.append(EnergyEvent(EV_JUMP, int(delta_wh)))
            return EnergyResult(self.cumulative_wh, tuple(events))
        self._lsb += delta
        return EnergyResult(self.cumulative_wh, tuple(events))

    @staticmethod
    def _signed(value: int) -> int:
        half = 1 << (ACC_BITS - 1)
        return value - (1 << ACC_BITS) if value >= half else value
