"""What the customer sees on the box: an HD44780-style LCD and a LED pulse per kWh.

The hardware libraries (RPLCD for the LCD behind a PCF8574 I²C backpack, gpiozero for the LED)
are optional and imported only when configured, so the agent runs - and is tested - without
them; a missing or failing device falls back to the log.
"""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

PULSE_SECONDS = 0.08
MAX_PULSES_PER_UPDATE = 20  # after an outage, do not blink for minutes


class Display(Protocol):
    def show_reading(self, wh: int) -> None: ...
    def show_status(self, text: str) -> None: ...
    def show_code(self, code: str) -> None: ...


class Led(Protocol):
    def pulse(self) -> None: ...


def format_reading(wh: int) -> str:
    return f"{wh // 1000:>9d}.{wh % 1000 // 100} kWh"


class LogDisplay:
    """Console/log backend; keeps the current two lines for the service console and tests."""

    def __init__(self) -> None:
        self.reading = ""
        self.status = ""
        self.code: str | None = None

    def show_reading(self, wh: int) -> None:
        self.reading = format_reading(wh)
        log.info("display: %s", self.reading)

    def show_status(self, text: str) -> None:
        self.status = text
        log.info("display status: %s", text)

    def show_code(self, code: str) -> None:
        self.code = code
        self.status = f"CODE {code}"
        log.info("display: claim code shown")  # the code itself stays off the log


class LcdDisplay(LogDisplay):
    """16x2 (or 20x4) HD44780 via RPLCD; line 1 the reading, line 2 status or claim code."""

    def __init__(self, *, address: int = 0x27, port: int = 1, cols: int = 16, rows: int = 2):
        super().__init__()
        rplcd_i2c = importlib.import_module("RPLCD.i2c")  # optional dependency
        self.cols = cols
        self._lcd: Any = rplcd_i2c.CharLCD(
            "PCF8574", address, port=port, cols=cols, rows=rows, auto_linebreaks=False
        )
        self._lcd.clear()

    def _write(self) -> None:
        try:
            self._lcd.cursor_pos = (0, 0)
            self._lcd.write_string(self.reading[: self.cols].ljust(self.cols))
            self._lcd.cursor_pos = (1, 0)
            self._lcd.write_string(self.status[: self.cols].ljust(self.cols))
        except OSError as exc:  # a loose cable must not stop the meter
            log.warning("LCD write failed: %s", exc)

    def show_reading(self, wh: int) -> None:
        super().show_reading(wh)
        self._write()

    def show_status(self, text: str) -> None:
        super().show_status(text)
        self._write()

    def show_code(self, code: str) -> None:
        super().show_code(code)
        self._write()


class LogLed:
    def __init__(self) -> None:
        self.pulses = 0

    def pulse(self) -> None:
        self.pulses += 1


class GpioLed(LogLed):
    def __init__(self, pin: int) -> None:
        super().__init__()
        gpiozero = importlib.import_module("gpiozero")  # optional dependency
        self._led: Any = gpiozero.LED(pin)

    def pulse(self) -> None:
        super().pulse()
        self._led.blink(on_time=PULSE_SECONDS, off_time=PULSE_SECONDS, n=1, background=True)


class SysfsLed(LogLed):
    """A kernel LED (``/sys/class/leds/<name>/brightness``), e.g. one set up by a dtoverlay."""

    def __init__(self, name: str, root: Path = Path("/sys/class/leds")) -> None:
        super().__init__()
        if "/" in name or name in ("", ".", ".."):
            raise ValueError("LED name must be a plain name")
        self.path = root / name / "brightness"
        if not self.path.exists():
            raise OSError(f"no LED at {self.path}")

    def _set(self, value: str) -> None:
        try:
            self.path.write_text(value)
        except OSError as exc:
            log.warning("LED write failed: %s", exc)

    def pulse(self) -> None:
        super().pulse()
        self._set("1")
        timer = threading.Timer(PULSE_SECONDS, self._set, ("0",))
        timer.daemon = True
        timer.start()


class PulseCounter:
    """Pulses the LED once for every whole kWh the cumulative reading passes."""

    def __init__(self, led: Led, start_wh: int | None = None) -> None:
        self.led = led
        self._kwh = None if start_wh is None else start_wh // 1000

    def update(self, wh: int) -> int:
        kwh = wh // 1000
        if self._kwh is None or kwh < self._kwh:
            self._kwh = kwh
            return 0
        n = min(kwh - self._kwh, MAX_PULSES_PER_UPDATE)
        self._kwh = kwh
        for _ in range(n):
            self.led.pulse()
        return n


def make_display(kind: str = "log", **options: Any) -> LogDisplay:
    """``kind`` ``"lcd"`` tries the LCD and falls back to the log if RPLCD or the device is
    missing; anything else is the log backend."""
    if kind == "lcd":
        try:
            return LcdDisplay(**options)
        except (ImportError, OSError, ValueError) as exc:
            log.warning("LCD unavailable (%s); using the log display", exc)
    return LogDisplay()


def make_led(spec: str | None) -> LogLed:
    """``gpio:<pin>``, ``sysfs:<name>`` or None/"" for no LED (pulses only counted)."""
    try:
        if spec and spec.startswith("gpio:"):
            return GpioLed(int(spec[5:]))
        if spec and spec.startswith("sysfs:"):
            return SysfsLed(spec[6:])
    except (ImportError, OSError, ValueError) as exc:
        log.warning("LED %s unavailable (%s); pulses are only counted", spec, exc)
    return LogLed()
