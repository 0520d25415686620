"""A fake GSM modem on a pseudo-terminal, for tests, demos and the simulated network.

It speaks the AT dialogue the real driver uses (3GPP TS 27.007/27.005, PDU mode) on the master
side of a pty; the driver opens the slave path with pyserial exactly as it would open
``/dev/ttyUSB2``, so every byte goes through a real tty. Outgoing PDUs are decoded with
:mod:`meteragent.protocol.pdu`; incoming SMS are stored and announced with ``+CMTI``.

Failure knobs (set them at any time): ``sim_present``, ``pin_state``, ``registration``,
``mute`` (no answer at all), ``drop_send`` (accept a PDU, never answer), ``cms_error_on_send``,
``fail_next`` (command prefix -> error line, or "" for no answer; used once).

As a network endpoint: ``on_submit(tpdu_bytes)`` is called for every accepted SMS-SUBMIT (from
the fake's thread), and ``deliver(pdu)`` puts an SMS-DELIVER into the inbox.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..protocol import pdu as sms

CTRL_Z = 0x1A
ESC = 0x1B


@dataclass(frozen=True)
class SentMessage:
    mr: int
    tpdu: bytes
    submit: sms.Submit


@dataclass
class _Stored:
    stat: int  # 0 REC UNREAD, 1 REC READ
    pdu: bytes  # SMSC address + TPDU


class FakeModem:
    def __init__(
        self,
        *,
        echo: bool = True,
        pin: str = "1234",
        pin_state: str = "READY",
        registration: int = 1,
        csq: tuple[int, int] = (20, 99),
        smsc: str = "+447785016005",
        on_submit: Callable[[bytes], None] | None = None,
        capacity: int = 30,
    ) -> None:
        self.echo = echo
        self.pin = pin
        self.pin_state = pin_state
        self.sim_present = True
        self.registration = registration
        self.csq = csq
        self.smsc = smsc
        self.on_submit = on_submit
        self.capacity = capacity
        self.mute = False
        self.drop_send = False
        self.cms_error_on_send: int | None = None
        self.fail_next: dict[str, str] = {}
        # Command prefix -> seconds: the next such command is answered that late, once.
        self.late_next: dict[str, float] = {}
        self.cmee = 0
        self.cmgf = 0
        self.cnmi: str | None = None
        self.commands: list[str] = []
        self.sent: list[SentMessage] = []
        self.inbox: dict[int, _Stored] = {}
        self._next_mr = 0
        self._lock = threading.Lock()
        self._pending_urcs: list[bytes] = []
        self._urcs_with_next_response: list[bytes] = []
        self._line = bytearray()
        self._write_lock = threading.Lock()
        self._pdu_len: int | None = None  # set while collecting a PDU after AT+CMGS
        self._master, self._slave = os.openpty()
        # Raw mode: no echo or CR/LF translation by the tty layer; echo is ours to do.
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="fake-modem", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeModem:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> FakeModem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test / network API

    def deliver(self, pdu: bytes | str, *, urc: str = "now") -> int:
        """Store an incoming SMS (SMSC address + SMS-DELIVER TPDU) and announce it.

        ``urc``: ``"now"`` sends ``+CMTI`` at once (when the modem is idle),
        ``"with_next_response"`` right before the answer to the next command (to test URCs
        interleaved with a response), ``"none"`` stores silently.
        """
        data = bytes.fromhex(pdu) if isinstance(pdu, str) else bytes(pdu)
        with self._lock:
            index = next(i for i in range(1, self.capacity + 2) if i not in self.inbox)
            if index > self.capacity:
                raise RuntimeError("fake modem storage full")
            self.inbox[index] = _Stored(0, data)
            line = f'\r\n+CMTI: "SM",{index}\r\n'.encode()
            if urc == "now":
                self._pending_urcs.append(line)
            elif urc == "with_next_response":
                self._urcs_with_next_response.append(line)
        os.write(self._wake_w, b"u")
        return index

    def inject_sms(
        self,
        sender: str,
        payload: bytes,
        *,
        timestamp: datetime | None = None,
        concat: sms.Concat | None = None,
        urc: str = "now",
    ) -> int:
        """Build an 8-bit SMS-DELIVER from ``sender`` and deliver it."""
        ts = timestamp or datetime.now(UTC).replace(microsecond=0)
        return self.deliver(
            sms.encode_deliver(sender, payload, ts, concat=concat, smsc=self.smsc), urc=urc
        )

    def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes to the driver (noise, a stray URC)."""
        with self._lock:
            self._pending_urcs.append(bytes(data))
        os.write(self._wake_w, b"u")

    # ------------------------------------------------------------------ the modem

    def _run(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                os.read(self._wake_r, 1024)
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except OSError:  # slave side closed
                    data = b""
                for b in data:
                    self._feed(b)
            # URCs go out only between commands, as a real modem does.
            if not self._line and self._pdu_len is None and not self.mute:
                with self._lock:
                    out, self._pending_urcs = self._pending_urcs, []
                for chunk in out:
                    self._write(chunk)

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            os.write(self._master, data)

    def _feed(self, b: int) -> None:
        if self._pdu_len is not None:
            self._feed_pdu(b)
            return
        if b == 0x0D:
            line = self._line.decode("ascii", errors="replace").strip()
            self._line.clear()
            if self.echo and not self.mute:
                self._write(line.encode() + b"\r")
            if line:
                self._handle_line(line)
        elif b >= 0x20:  # control characters (LF, a stray ESC) are not part of a command
            self._line.append(b)

    def _respond(self, *lines: str, final: str = "OK") -> None:
        if self.mute:
            return
        with self._lock:
            urcs, self._urcs_with_next_response = self._urcs_with_next_response, []
        out = b"".join(urcs)
        out += b"".join(f"\r\n{line}\r\n".encode() for line in lines)
        out += f"\r\n{final}\r\n".encode()
        self._write(out)

    def _error(self, kind: str, code: int) -> None:
        if self.cmee == 0:
            self._respond(final="ERROR")
        else:
            self._respond(final=f"+{kind} ERROR: {code}")

    def _handle_line(self, line: str) -> None:
        self.commands.append(line)
        if self.mute:
            return
        cmd = line.upper()
        for prefix, err in list(self.fail_next.items()):
            if cmd.startswith(prefix.upper()):
                del self.fail_next[prefix]
                if err:  # an empty string swallows the command: no answer at all, once
                    self._respond(final=err)
                return
        for prefix, delay in list(self.late_next.items()):
            if cmd.startswith(prefix.upper()):
                del self.late_next[prefix]
                timer = threading.Timer(delay, self._answer, args=(line, cmd))
                timer.daemon = True
                timer.start()
                return
        self._answer(line, cmd)

    def _answer(self, line: str, cmd: str) -> None:
        if not cmd.startswith("AT"):
            self._respond(final="ERROR")
            return
        body = cmd[2:]
        handler = self._handler(body)
        if handler is None:
            self._respond(final="ERROR")
        else:
            handler(line[2:])

    def _handler(self, body: str) -> Callable[[str], None] | None:
        table: list[tuple[str, Callable[[str], None]]] = [
            ("E", self._ate),
            ("+CMEE=", self._cmee),
            ("+CPIN?", self._cpin_query),
            ("+CPIN=", self._cpin_set),
            ("+CREG?", self._creg),
            ("+CSQ", self._csq),
            ("+CMGF=", self._cmgf),
            ("+CNMI=", self._cnmi),
            ("+CMGS=", self._cmgs),
            ("+CMGL=", self._cmgl),
            ("+CMGR=", self._cmgr),
            ("+CMGD=", self._cmgd),
            ("+CSCA?", self._csca),
        ]
        if body == "":
            return lambda _arg: self._respond()
        for prefix, fn in table:
            if body.startswith(prefix):
                return fn
        return None

    # ------------------------------------------------------------------ commands

    def _ate(self, arg: str) -> None:
        value = arg[1:]
        if value not in ("", "0", "1"):
            self._respond(final="ERROR")
            return
        self.echo = value == "1"
        self._respond()

    def _cmee(self, arg: str) -> None:
        value = arg.split("=", 1)[1]
        if value not in ("0", "1", "2"):
            self._respond(final="ERROR")
            return
        self.cmee = int(value)
        self._respond()

    def _sim_ok(self) -> bool:
        if not self.sim_present:
            self._error("CME", 10)
            return False
        if self.pin_state != "READY":
            self._error("CME", 11)
            return False
        return True

    def _cpin_query(self, _arg: str) -> None:
        if not self.sim_present:
            self._error("CME", 10)
        else:
            self._respond(f"+CPIN: {self.pin_state}")

    def _cpin_set(self, arg: str) -> None:
        given = arg.split("=", 1)[1].strip('"')
        if not self.sim_present:
            self._error("CME", 10)
        elif self.pin_state != "SIM PIN" or given != self.pin:
            self._error("CME", 16)
        else:
            self.pin_state = "READY"
            self._respond()

    def _creg(self, _arg: str) -> None:
        if self._sim_ok():
            self._respond(f"+CREG: 0,{self.registration}")

    def _csq(self, _arg: str) -> None:
        self._respond(f"+CSQ: {self.csq[0]},{self.csq[1]}")

    def _cmgf(self, arg: str) -> None:
        value = arg.split("=", 1)[1]
        if value not in ("0", "1"):
            self._respond(final="ERROR")
            return
        self.cmgf = int(value)
        self._respond()

    def _cnmi(self, arg: str) -> None:
        self.cnmi = arg.split("=", 1)[1]
        self._respond()

    def _csca(self, _arg: str) -> None:
        self._respond(f'+CSCA: "{self.smsc}",145')

    def _cmgs(self, arg: str) -> None:
        if not self._sim_ok():
            return
        if self.cmgf != 0:
            self._error("CMS", 302)  # text mode is not implemented by the fake
            return
        try:
            length = int(arg.split("=", 1)[1])
        except ValueError:
            self._error("CMS", 304)
            return
        if not 7 <= length <= 164:
            self._error("CMS", 304)
            return
        self._pdu_len = length
        self._line.clear()
        self._write(b"\r\n> ")

    def _feed_pdu(self, b: int) -> None:
        if b == ESC:  # cancel
            self._pdu_len = None
            self._line.clear()
            self._respond()
            return
        if b != CTRL_Z:
            if self.echo:
                self._write(bytes([b]))
            if b not in (0x0D, 0x0A):
                self._line.append(b)
            return
        hexpdu = self._line.decode("ascii", errors="replace").strip()
        expected = self._pdu_len
        self._pdu_len = None
        self._line.clear()
        self._submit(hexpdu, expected)

    def _submit(self, hexpdu: str, expected: int) -> None:
        try:
            data = bytes.fromhex(hexpdu)
            _smsc, tpdu = sms.split_smsc(data)
            if len(tpdu) != expected:
                raise sms.PduError("length does not match AT+CMGS")
            submit = sms.decode_submit(tpdu)
        except (ValueError, sms.PduError):
            self._error("CMS", 304)
            return
        if self.registration not in (1, 5):
            self._error("CMS", 331)
            return
        if self.cms_error_on_send is not None:
            self._error("CMS", self.cms_error_on_send)
            return
        if self.drop_send:
            return
        mr = self._next_mr
        self._next_mr = (self._next_mr + 1) % 256
        self.sent.append(SentMessage(mr, tpdu, submit))
        if self.on_submit is not None:
            self.on_submit(tpdu)
        self._respond(f"+CMGS: {mr}")

    def _stat_matches(self, want: int, stat: int) -> bool:
        return want == 4 or want == stat

    def _cmgl(self, arg: str) -> None:
        if not self._sim_ok():
            return
        try:
            want = int(arg.split("=", 1)[1])
        except ValueError:
            self._error("CMS", 302)
            return
        lines = []
        with self._lock:
            for index in sorted(self.inbox):
                msg = self.inbox[index]
                if self._stat_matches(want, msg.stat):
                    _, tpdu = sms.split_smsc(msg.pdu)
                    lines += [f"+CMGL: {index},{msg.stat},,{len(tpdu)}", msg.pdu.hex().upper()]
                    if msg.stat == 0:
                        msg.stat = 1
        self._respond_block(lines)

    def _respond_block(self, lines: list[str]) -> None:
        # +CMGL/+CMGR put the header and PDU on consecutive lines.
        if self.mute:
            return
        with self._lock:
            urcs, self._urcs_with_next_response = self._urcs_with_next_response, []
        body = "".join(f"{line}\r\n" for line in lines)
        self._write(b"".join(urcs) + (b"\r\n" + body.encode() if lines else b"") + b"\r\nOK\r\n")

    def _index(self, arg: str) -> int | None:
        try:
            return int(arg.split("=", 1)[1].split(",")[0])
        except ValueError:
            return None

    def _cmgr(self, arg: str) -> None:
        if not self._sim_ok():
            return
        index = self._index(arg)
        with self._lock:
            msg = self.inbox.get(index) if index is not None else None
            if msg is None:
                lines = None
            else:
                _, tpdu = sms.split_smsc(msg.pdu)
                lines = [f"+CMGR: {msg.stat},,{len(tpdu)}", msg.pdu.hex().upper()]
                msg.stat = 1
        if lines is None:
            self._error("CMS", 321)
        else:
            self._respond_block(lines)

    def _cmgd(self, arg: str) -> None:
        if not self._sim_ok():
            return
        parts = arg.split("=", 1)[1].split(",")
        try:
            index = int(parts[0])
            flag = int(parts[1]) if len(parts) > 1 else 0
        except ValueError:
            self._error("CMS", 302)
            return
        with self._lock:
            if flag == 4:
                self.inbox.clear()
            elif flag in (1, 2, 3):
                for i in [i for i, m in self.inbox.items() if m.stat == 1]:
                    del self.inbox[i]
            elif index in self.inbox:
                del self.inbox[index]
            else:
                index = -1
        if index == -1:
            self._error("CMS", 321)
        else:
            self._respond()
