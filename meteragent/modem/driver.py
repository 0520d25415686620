"""GSM modem driver: SIM and network checks, SMS in PDU mode (3GPP TS 27.005)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from ..protocol import pdu as sms
from .at import ATChannel, SerialPort, Urc
from .errors import (
    CME_SIM_NOT_INSERTED,
    CmeError,
    ModemError,
    ModemTimeout,
    NotRegisteredError,
    SimError,
)

# +CMGL / +CMGR <stat> in PDU mode (TS 27.005 3.1)
STAT_REC_UNREAD = 0
STAT_REC_READ = 1
STAT_STO_UNSENT = 2
STAT_STO_SENT = 3
STAT_ALL = 4

_CMGL = re.compile(r"^\+CMGL:\s*(\d+),(\d+),[^,]*,(\d+)$")
_CMGR = re.compile(r"^\+CMGR:\s*(\d+),[^,]*,(\d+)$")
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


@dataclass(frozen=True)
class Registration:
    """``+CREG`` <stat>: 1 home, 5 roaming are registered; 2 searching; 3 denied."""

    stat: int

    @property
    def registered(self) -> bool:
        return self.stat in (1, 5)


@dataclass(frozen=True)
class SignalQuality:
    rssi: int  # 0..31, 99 = unknown
    ber: int

    @property
    def dbm(self) -> int | None:
        return None if self.rssi == 99 else -113 + 2 * self.rssi


@dataclass(frozen=True)
class StoredMessage:
    """A message in the modem's storage, as listed by +CMGL or read by +CMGR."""

    index: int | None
    stat: int
    length: int
    pdu: bytes  # SMSC address + TPDU

    def deliver(self) -> sms.Deliver:
        """Decode as SMS-DELIVER; raises PduError for anything else or garbage."""
        return sms.decode_deliver(self.pdu)

    @property
    def mti(self) -> int | None:
        try:
            _, tpdu = sms.split_smsc(self.pdu)
        except sms.PduError:
            return None
        return tpdu[0] & 0x03 if tpdu else None


def _parse_pdu_line(line: str, length: int) -> bytes:
    if not _HEX.match(line) or len(line) % 2:
        raise ModemError("modem returned a non-hex PDU line")
    data = bytes.fromhex(line)
    try:
        _, tpdu = sms.split_smsc(data)
    except sms.PduError as exc:
        raise ModemError(f"bad PDU from modem: {exc}") from exc
    if len(tpdu) != length:
        raise ModemError(f"PDU length {len(tpdu)} does not match announced {length}")
    return data


class GsmModem:
    """Blocking modem API. Each method is one short AT dialogue with its own time limit."""

    def __init__(
        self,
        port: SerialPort,
        *,
        command_timeout: float = 5.0,
        send_timeout: float = 60.0,
        retries: int = 2,
        on_urc: Callable[[Urc], None] | None = None,
    ) -> None:
        self.at = ATChannel(port, on_urc=on_urc)
        self.command_timeout = command_timeout
        self.send_timeout = send_timeout
        self.retries = retries

    @classmethod
    def open(cls, path: str, baudrate: int = 115200, **kwargs: object) -> GsmModem:
        # timeout=0: reads never block inside pyserial; the channel waits in select().
        port = serial.Serial(path, baudrate=baudrate, timeout=0, exclusive=True)
        return cls(port, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.at.close()

    def __enter__(self) -> GsmModem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def command(self, cmd: str, *, expect: str | None = None, retry: bool = True) -> list[str]:
        """Run an idempotent command, retrying after timeouts (the modem may have been busy
        or missed the line)."""
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                return self.at.command(cmd, timeout=self.command_timeout, expect=expect)
            except ModemTimeout:
                # The channel resynchronises before the next command (ATChannel.resync).
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _single(self, cmd: str, prefix: str) -> str:
        for line in self.command(cmd, expect=prefix):
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise ModemError(f"no {prefix} line in answer to {cmd}")

    # ------------------------------------------------------------------ set-up and status

    def initialise(self, pin: str | None = None) -> None:
        """Bring the modem into the state the agent relies on.

        Echo off, numeric error codes, SIM unlocked, PDU mode, and new messages stored on the
        SIM with a ``+CMTI`` indication (status reports likewise with ``+CDSI``).
        """
        self.command("ATE0")
        self.command("AT+CMEE=1")
        self.unlock_sim(pin)
        self.command("AT+CMGF=0")
        self.command("AT+CNMI=2,1,0,2,0")

    def pin_status(self) -> str:
        try:
            return self._single("AT+CPIN?", "+CPIN:")
        except CmeError as exc:
            if exc.code == CME_SIM_NOT_INSERTED:
                raise SimError("no SIM inserted") from exc
            raise

    def unlock_sim(self, pin: str | None) -> None:
        state = self.pin_status()
        if state == "READY":
            return
        if state == "SIM PIN" and pin is not None:
            if not pin.isdigit() or not 4 <= len(pin) <= 8:
                raise SimError("PIN must be 4 to 8 digits")
            # Never retried: each wrong attempt counts towards the PUK lock.
            self.command(f'AT+CPIN="{pin}"', retry=False)
            if self.pin_status() == "READY":
                return
        raise SimError(f"SIM not ready: {state}")

    def registration(self) -> Registration:
        fields = self._single("AT+CREG?", "+CREG:").split(",")
        try:
            return Registration(int(fields[1] if len(fields) > 1 else fields[0]))
        except ValueError as exc:
            raise ModemError(f"bad +CREG answer {fields!r}") from exc

    def wait_registered(self, timeout: float, interval: float = 5.0) -> Registration:
        """Query registration every ``interval`` s until registered or ``timeout``.

        Sleeping between queries is safe: URCs meanwhile wait in the serial buffer.
        """
        deadline = time.monotonic() + timeout
        while True:
            reg = self.registration()
            if reg.registered:
                return reg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotRegisteredError(f"not registered (stat {reg.stat})")
            time.sleep(min(interval, remaining))

    def signal_quality(self) -> SignalQuality:
        parts = self._single("AT+CSQ", "+CSQ:").split(",")
        try:
            return SignalQuality(int(parts[0]), int(parts[1]))
        except (ValueError, IndexError) as exc:
            raise ModemError(f"bad +CSQ answer {parts!r}") from exc

    # ------------------------------------------------------------------ sending

    def send(self, submit: sms.Submit, *, smsc: str | None = None) -> int:
        """Send one SMS-SUBMIT; returns the message reference from ``+CMGS``.

        Not retried here after the PDU went out: the modem may have sent it. The caller
        resends at its next slot, and the protocol is idempotent.
        """
        lines = self.at.send_pdu(
            submit.tpdu_length,
            submit.pdu_hex(smsc),
            prompt_timeout=self.command_timeout,
            timeout=self.send_timeout,
        )
        for line in lines:
            if line.startswith("+CMGS:"):
                try:
                    return int(line[6:].strip().split(",")[0])
                except ValueError as exc:
                    raise ModemError(f"bad +CMGS answer {line!r}") from exc
        raise ModemError("no +CMGS reference in send answer")

    def send_payload(
        self, destination: str, payload: bytes, ref: int, **kwargs: object
    ) -> list[int]:
        """Send ``payload`` as one SMS or as concatenated parts; returns the references."""
        parts = sms.encode_submit_parts(destination, payload, ref, **kwargs)
        return [self.send(p) for p in parts]

    # ------------------------------------------------------------------ receiving

    def list_messages(self, stat: int = STAT_ALL) -> list[StoredMessage]:
        lines = self.command(f"AT+CMGL={stat}", expect="+CMGL:")
        out = []
        it = iter(lines)
        for line in it:
            m = _CMGL.match(line)
            if not m:
                raise ModemError(f"unexpected line in +CMGL answer: {line!r}")
            pdu_line = next(it, None)
            if pdu_line is None:
                raise ModemError("+CMGL entry without PDU")
            index, st, length = (int(g) for g in m.groups())
            out.append(StoredMessage(index, st, length, _parse_pdu_line(pdu_line, length)))
        return out

    def read_message(self, index: int) -> StoredMessage:
        lines = self.command(f"AT+CMGR={int(index)}", expect="+CMGR:")
        if len(lines) < 2:
            raise ModemError(f"no message at index {index}")
        m = _CMGR.match(lines[0])
        if not m:
            raise ModemError(f"unexpected +CMGR answer: {lines[0]!r}")
        st, length = int(m.group(1)), int(m.group(2))
        return StoredMessage(index, st, length, _parse_pdu_line(lines[1], length))

    def delete_message(self, index: int) -> None:
        self.command(f"AT+CMGD={int(index)}")

    def wait_for_urc(self, timeout: float) -> Urc | None:
        """Block until the modem reports something (``+CMTI`` for a new SMS) or timeout."""
        return self.at.wait_urc(timeout)
