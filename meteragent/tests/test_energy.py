"""Energy sources: the ADE7953 driver against a fake I²C bus, and the simulated household."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meteragent.energy import Ade7953, Ade7953EnergySource, Bypass, SimulatedEnergySource
from meteragent.energy import ade7953 as regs
from meteragent.energy.base import EV_CHIP_RESET, EV_GAP, EV_JUMP, EV_READ_ERROR, EV_REVERSE

I2C_M_RD = 0x0001
LSB_PER_WH = 100  # test calibration: 2**23 LSB = 83.9 kWh, 3.6 h at 23 kW


class FakeAde7953Bus:
    """Test-only stand-in for smbus2.SMBus implementing the ADE7953 register protocol."""

    def __init__(self) -> None:
        self.regs = {regs.REG_LCYCMODE: regs.LCYCMODE_DEFAULT, regs.REG_VERSION: 0x02}
        self.energy = 0  # the 24-bit accumulator, as an unbounded count
        self.fail = 0  # fail this many transactions
        self.writes: list[tuple[int, int]] = []
        self.unlocked = False

    def brown_out(self) -> None:
        self.regs[regs.REG_LCYCMODE] = regs.LCYCMODE_DEFAULT
        self.energy = 0

    def i2c_rdwr(self, *msgs) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError(121, "Remote I/O error")
        write = bytes(msgs[0])
        assert msgs[0].addr == 0x38 and not msgs[0].flags & I2C_M_RD
        reg = int.from_bytes(write[:2], "big")
        if len(msgs) == 1:  # register write
            value = int.from_bytes(write[2:], "big")
            assert len(write) - 2 == regs.register_width(reg)
            if reg == regs.REG_RESERVED_120:
                assert self.unlocked, "0x120 written without unlocking"
            self.unlocked = reg == regs.REG_UNLOCK and value == regs.UNLOCK_KEY
            self.regs[reg] = value
            self.writes.append((reg, value))
            return
        rd = msgs[1]
        assert rd.flags & I2C_M_RD and rd.len == regs.register_width(reg)
        if reg == regs.REG_AENERGYA_32:
            acc = self.energy % (1 << 24)
            signed = acc - (1 << 24) if acc >= 1 << 23 else acc
            value = signed % (1 << 32)  # 32-bit read: sign-extended
        else:
            value = self.regs.get(reg, 0)
        ctypes.memmove(rd.buf, value.to_bytes(rd.len, "big"), rd.len)


@pytest.fixture
def bus():
    return FakeAde7953Bus()


def source(bus, **kw) -> Ade7953EnergySource:
    return Ade7953EnergySource(Ade7953(bus), lsb_per_wh=LSB_PER_WH, **kw)


def test_configures_chip_and_counts(bus):
    src = source(bus, baseline_wh=5000)
    assert src.read(0).wh == 5000
    assert (regs.REG_UNLOCK, 0xAD) in bus.writes and (regs.REG_RESERVED_120, 0x30) in bus.writes
    assert bus.regs[regs.REG_LCYCMODE] == 0x00  # read-with-reset off
    bus.energy += 150_050  # 1500.5 Wh in an hour
    assert src.read(3600).wh == 6500
    bus.energy += 50  # the half Wh carried over is not lost
    assert src.read(7200).wh == 6501


def test_accumulator_wrap(bus):
    bus.energy = (1 << 23) - 1000  # near the top of the signed 24-bit range
    src = source(bus)
    src.read(0)
    bus.energy += 300_000  # wraps through 0x800000
    r = src.read(3600)
    assert r.wh == 3000 and r.events == ()


def test_restart_counts_energy_used_while_agent_was_down(bus):
    bus.energy = 123_000
    src = source(bus)
    src.read(0)
    wh, raw = src.state
    bus.energy += 200_000
    src2 = source(bus, baseline_wh=wh, baseline_raw=raw, baseline_time=0)
    assert src2.read(3600).wh == 2000


def test_read_errors_retry_then_error_result(bus):
    src = source(bus)
    src.read(0)
    bus.fail = 2  # transient: the third attempt works
    bus.energy += 100
    assert src.read(60).wh == 1
    bus.fail = 100
    r = src.read(120)
    assert r.wh is None and "Remote I/O" in r.error
    assert [e.kind for e in r.events] == [EV_READ_ERROR]
    bus.fail = 0
    bus.energy += 100
    assert src.read(180).wh == 2  # nothing lost: the register kept counting


def test_implausible_jump_is_an_event_not_consumption(bus):
    src = source(bus)
    src.read(0)
    bus.energy += 5_000_000  # 50 kWh in one minute: impossible behind a 100 A fuse
    r = src.read(60)
    assert r.wh == 0
    assert [(e.kind, e.arg) for e in r.events] == [(EV_JUMP, 50_000)]
    bus.energy += 100
    assert src.read(120).wh == 1  # counting continues from the new position


def test_reverse_energy_is_reported_not_subtracted(bus):
    bus.energy = 1_000_000
    src = source(bus)
    src.read(0)
    bus.energy -= 200_000
    r = src.read(3600)
    assert r.wh == 0 and [(e.kind, e.arg) for e in r.events] == [(EV_REVERSE, 2000)]


def test_chip_reset_is_detected_and_reconfigured(bus):
    src = source(bus)
    src.read(0)
    bus.energy += 100_000
    assert src.read(3600).wh == 1000
    bus.brown_out()
    bus.energy += 700
    r = src.read(3660)
    assert r.wh == 1000 and r.events[0].kind == EV_CHIP_RESET
    assert bus.regs[regs.REG_LCYCMODE] == regs.LCYCMODE_OURS
    bus.energy += 200
    assert src.read(3720).wh == 1002


def test_long_gap_is_reported(bus):
    src = source(bus, max_power_w=23_000)
    src.read(0)
    gap = src.max_read_interval() + 10
    bus.energy += 100
    r = src.read(gap)
    assert r.events[0].kind == EV_GAP


def test_modules_import_without_smbus2():
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys; sys.modules['smbus2'] = None\n"
        "import meteragent.energy as e\n"
        "s = e.SimulatedEnergySource(seed=1, start=0)\n"
        "print(s.read(3600).wh > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"


# ------------------------------------------------------------------ simulated household

T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()  # a Monday
HOUR = 3600


def test_simulated_is_deterministic_and_independent_of_read_pattern():
    a = SimulatedEnergySource(seed=7, start=T0)
    b = SimulatedEnergySource(seed=7, start=T0)
    hourly = [a.read(T0 + h * 3600 + 1234).wh for h in range(1, 49)]
    assert b.read(T0 + 48 * 3600 + 1234).wh == hourly[-1]
    assert hourly == sorted(hourly)  # cumulative never decreases
    c = SimulatedEnergySource(seed=8, start=T0)
    assert c.read(T0 + 48 * 3600 + 1234).wh != hourly[-1]


def test_simulated_annual_total_and_shape():
    src = SimulatedEnergySource(seed=3, start=T0, annual_kwh=3500)
    year = src.read(T0 + 365 * 86400).wh
    assert 3300_000 < year < 3700_000

    def mean_power(hours):
        return sum(src.power_w(T0 + h * 3600) for h in hours) / len(hours)

    weekdays = [d for d in range(0, 56) if d % 7 < 5]  # Jan-Feb weekdays (Mon start)
    night = mean_power([d * 24 + 3 for d in weekdays])
    morning = mean_power([d * 24 + 7 for d in weekdays])
    evening = mean_power([d * 24 + 19 for d in weekdays])
    assert morning > 2 * night and evening > 3 * night
    weekend = [d for d in range(0, 56) if d % 7 >= 5]
    assert mean_power([d * 24 + 13 for d in weekend]) > mean_power([d * 24 + 13 for d in weekdays])
    july = 182
    winter = mean_power(range(0, 24 * 28))
    summer = mean_power(range(july * 24, (july + 28) * 24))
    assert winter > 1.3 * summer


def test_a_bypass_hides_its_fraction_of_the_load_from_then_on():
    since = T0 + 24 * HOUR
    honest = SimulatedEnergySource(seed=5, start=T0)
    bypassed = SimulatedEnergySource(seed=5, start=T0, bypass=Bypass(since=since, fraction=0.8))
    assert bypassed.read(since).wh == honest.read(since).wh  # nothing changes before
    later = since + 7 * 24 * HOUR
    honest_week = honest.read(later).wh - honest.read(since).wh
    bypassed_week = bypassed.read(later).wh - bypassed.read(since).wh
    assert bypassed_week == pytest.approx(0.2 * honest_week, rel=0.01)
