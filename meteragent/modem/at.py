"""The AT command dialogue over a serial port (3GPP TS 27.007 / 27.005 result codes).

One command at a time: write it, then read lines until a final result code, diverting
unsolicited result codes (URCs such as ``+CMTI``) that the modem may interleave with the
response into a queue. Reads block in ``select`` with the remaining time as timeout, so an idle
agent costs no CPU (no busy polling).
"""

from __future__ import annotations

import logging
import select
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import serial

from .errors import CmeError, CmsError, ModemError, ModemPortError, ModemTimeout

CTRL_Z = b"\x1a"
ESC = b"\x1b"

FINAL_ERRORS = ("ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")
# Lines that can arrive at any moment, whatever command is running.
URC_PREFIXES = ("+CMTI:", "+CDSI:", "+CMT:", "+CDS:", "+CBM:", "RING", "+CREG:", "+CGREG:")
# These carry a PDU on the following line.
TWO_LINE_URCS = ("+CMT:", "+CDS:", "+CBM:")
MAX_LINE = 4096  # a line longer than this is garbage on the port, not a modem answer
MAX_UNANSWERED = 4  # timed-out commands whose late answers a resync waits for, at most

log = logging.getLogger(__name__)


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the channel uses."""

    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int = 1) -> bytes: ...
    def fileno(self) -> int: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


@dataclass(frozen=True)
class Urc:
    """An unsolicited result code; ``pdu`` is the second line of ``+CMT``/``+CDS``."""

    line: str
    pdu: str | None = None

    @property
    def name(self) -> str:
        return self.line.split(":", 1)[0]

    @property
    def args(self) -> list[str]:
        _, _, rest = self.line.partition(":")
        return [a.strip().strip('"') for a in rest.split(",")] if rest else []


def _error_for(line: str, command: str | None) -> ModemError | None:
    for prefix, cls in (("+CME ERROR:", CmeError), ("+CMS ERROR:", CmsError)):
        if line.startswith(prefix):
            text = line[len(prefix) :].strip()
            code = int(text) if text.isdigit() else None
            return cls(code, text, command)
    if line in FINAL_ERRORS:
        return ModemError(f"{line} (after {command})")
    return None


class ATChannel:
    """Line-level AT dialogue. Not thread-safe: the agent's modem task owns it."""

    def __init__(self, port: SerialPort, *, on_urc: Callable[[Urc], None] | None = None) -> None:
        self.port = port
        self.on_urc = on_urc
        self.urcs: deque[Urc] = deque(maxlen=256)
        self._buf = bytearray()
        self._discarding = False  # inside an overlong line: drop bytes up to its newline
        self._unanswered = 0  # commands that timed out: their answers may still come
        self.discarded_lines = 0

    # ------------------------------------------------------------------ reading

    def _fill(self, deadline: float) -> bool:
        """Wait for more bytes until ``deadline``; False on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            ready, _, _ = select.select([self.port.fileno()], [], [], remaining)
            if not ready:
                return False
            data = self.port.read(max(1, self.port.in_waiting))
        except (OSError, serial.SerialException) as exc:
            raise ModemPortError(f"serial port failed: {exc}") from exc
        self._buf += data
        return True

    def _readline(self, deadline: float) -> str | None:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                if self._discarding:  # the end of an overlong line
                    self._discarding = False
                    continue
                return raw.decode("ascii", errors="replace").strip()
            if len(self._buf) > MAX_LINE:
                # Noise on the line, not an answer: dropped, up to its end, and logged once.
                if not self._discarding:
                    self.discarded_lines += 1
                    log.warning("discarded a line of more than %d bytes from the modem", MAX_LINE)
                self._discarding = True
                self._buf.clear()
            if not self._fill(deadline):
                return None

    def _is_urc(self, line: str, expect: str | None) -> bool:
        if expect and line.startswith(expect):
            return False
        return line.startswith(URC_PREFIXES)

    def _take_urc(self, line: str, deadline: float) -> Urc:
        pdu = None
        if line.startswith(TWO_LINE_URCS):
            # The PDU line follows immediately; allow a short grace beyond the deadline.
            pdu = self._readline(max(deadline, time.monotonic() + 1.0))
        urc = Urc(line, pdu)
        self.urcs.append(urc)
        if self.on_urc is not None:
            self.on_urc(urc)
        return urc

    # ------------------------------------------------------------------ commands

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (OSError, serial.SerialException) as exc:
            raise ModemPortError(f"serial port failed: {exc}") from exc

    def discard_input(self) -> None:
        """Drop anything buffered."""
        self._buf.clear()
        try:
            self.port.reset_input_buffer()
        except (OSError, serial.SerialException) as exc:
            raise ModemPortError(f"serial port failed: {exc}") from exc

    def resync(self, timeout: float) -> None:
        """Bring the dialogue back in step after timed-out commands.

        A timed-out command's answer may still come; taken for the next command's, it would
        leave the dialogue one command behind for good. So: send a probe ``AT`` and drop every
        line until one final result per unanswered command plus the probe's has arrived - or,
        once the probe is answered, until ``timeout`` has passed without the rest (those
        commands were lost). URCs are kept. Raises ModemTimeout if nothing answers at all.
        """
        deadline = time.monotonic() + timeout
        self._buf.clear()
        self.write(b"AT\r")
        finals = 0
        while finals < self._unanswered + 1:
            line = self._readline(deadline)
            if line is None:
                if finals:
                    break  # the rest were lost, not late
                raise ModemTimeout("modem silent after a timeout")
            if line == "OK" or _error_for(line, None) is not None:
                finals += 1
                if finals == 1:
                    deadline = time.monotonic() + timeout  # time for a late answer to come
            elif self._is_urc(line, None):
                self._take_urc(line, deadline)
            elif line:
                log.info("dropped a late line from the modem: %r", line[:80])
        log.info("modem dialogue resynchronised (%d late answers)", max(0, finals - 1))
        self._unanswered = 0

    def command(self, cmd: str, *, timeout: float, expect: str | None = None) -> list[str]:
        """Send ``cmd`` and return its information lines (echo, URCs and OK removed).

        ``expect`` is the response prefix (e.g. ``+CREG:``) so that it is not mistaken for
        the URC of the same name. After an earlier timeout the dialogue is resynchronised
        first (:meth:`resync`).
        """
        if self._unanswered:
            self.resync(timeout)
        self.write(cmd.encode("ascii") + b"\r")
        return self._collect(cmd, time.monotonic() + timeout, expect)

    def _collect(self, cmd: str, deadline: float, expect: str | None) -> list[str]:
        lines: list[str] = []
        while True:
            line = self._readline(deadline)
            if line is None:
                self._unanswered = min(self._unanswered + 1, MAX_UNANSWERED)
                raise ModemTimeout(f"no answer to {cmd} in time")
            if not line or line == cmd:  # blank separator or our own echo
                continue
            if line == "OK":
                return lines
            err = _error_for(line, cmd)
            if err is not None:
                raise err
            if self._is_urc(line, expect):
                self._take_urc(line, deadline)
                continue
            lines.append(line)

    def send_pdu(
        self, length: int, pdu_hex: str, *, prompt_timeout: float, timeout: float
    ) -> list[str]:
        """``AT+CMGS=<length>``, wait for the ``>`` prompt, send the PDU and Ctrl-Z."""
        cmd = f"AT+CMGS={length}"
        if self._unanswered:
            self.resync(prompt_timeout)
        self.write(cmd.encode("ascii") + b"\r")
        self._wait_prompt(cmd, time.monotonic() + prompt_timeout)
        self.write(pdu_hex.encode("ascii") + CTRL_Z)
        return self._collect(cmd, time.monotonic() + timeout, "+CMGS:")

    def _wait_prompt(self, cmd: str, deadline: float) -> None:
        while True:
            while self._buf[:1] in (b"\r", b"\n"):
                del self._buf[:1]
            if self._buf.startswith(b">"):
                del self._buf[:1]
                if self._buf.startswith(b" "):
                    del self._buf[:1]
                return
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl]).decode("ascii", errors="replace").strip()
                del self._buf[: nl + 1]
                if not line or line == cmd:
                    continue
                err = _error_for(line, cmd)
                if err is not None:
                    raise err
                if self._is_urc(line, None):
                    self._take_urc(line, deadline)
                continue
            if not self._fill(deadline):
                # Leave the modem in command mode rather than waiting for a PDU forever.
                self.write(ESC)  # answered with OK or ERROR by most modems
                self._unanswered = min(self._unanswered + 1, MAX_UNANSWERED)
                raise ModemTimeout(f"no '>' prompt after {cmd}")

    def wait_urc(self, timeout: float) -> Urc | None:
        """Return the next queued URC, or block up to ``timeout`` seconds for one."""
        if self.urcs:
            return self.urcs.popleft()
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line is None:
                return None
            if line and self._is_urc(line, None):
                self._take_urc(line, deadline)
                return self.urcs.popleft()
            # Anything else while idle is a stray answer (e.g. late OK); drop it.

    def close(self) -> None:
        self.port.close()
