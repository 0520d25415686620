"""A Python replacement for Kannel's ``fakesmsc``: plays the operator's SMSC.

bearerbox's ``smsc = fake`` driver listens on a TCP port and speaks a line protocol, one
message per ``\\n``-terminated line, in both directions::

    <sender> <receiver> text <raw printable text>
    <sender> <receiver> data <url-encoded bytes>
    <sender> <receiver> udh <url-encoded UDH> <url-encoded bytes>
    <sender> <receiver> ucs2 <url-encoded UCS-2 bytes>        (Kannel >= 1.4.4)
    <sender> <receiver> route <smsbox-id> <text>               (MO only)
    <sender> <receiver> dlr-mask <mask> <text>                 (MO only)

Kannel 1.4.5 (Debian bookworm) behaviour, checked against bearerbox (see e2e/README.md):

* MO ``data`` and ``udh`` (also spelled ``udh-data``) give an 8-bit message (coding 1): the
  webhook gets ``application/octet-stream`` with the bytes intact. ``text`` gives coding 0,
  ``ucs2`` coding 2, ``dlr-mask`` an undefined coding (-1).
* MT: ``data`` for an 8-bit message without UDH (even if printable); with a UDH the line is
  ``<sender> <receiver> udh <url-encoded UDH> data <url-encoded bytes>`` (older Kannels
  omitted the inner ``data`` word; both are parsed). Kannel url-encodes a space as ``+``.
* The fake SMSC serves one client at a time.

This is the seam the operator-network simulator uses to bridge to simulated GSM modems.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from types import TracebackType
from typing import Self


def _url_encode(data: bytes) -> str:
    # Percent-encode every byte except unreserved ASCII; Kannel's octstr_url_decode accepts it.
    return urllib.parse.quote_from_bytes(data, safe="")


def _url_decode(data: bytes) -> bytes:
    # Kannel's octstr_url_encode writes a space as '+', and encodes a real '+' as %2B.
    return urllib.parse.unquote_to_bytes(data.replace(b"+", b" "))


def _check_number(number: str) -> None:
    if not number or any(c.isspace() for c in number):
        raise ValueError(f"phone number must be non-empty without whitespace: {number!r}")


@dataclass(frozen=True)
class MtMessage:
    """One mobile-terminated message as bearerbox handed it to the SMSC."""

    sender: str
    receiver: str
    type: str
    udh: bytes | None
    payload: bytes
    raw: bytes


def format_mo_line(sender: str, receiver: str, payload: bytes, udh: bytes | None = None) -> bytes:
    """Encode one 8-bit MO as a fake-SMSC line (``data``, or ``udh`` when a UDH is given)."""
    _check_number(sender)
    _check_number(receiver)
    if udh:
        line = f"{sender} {receiver} udh {_url_encode(udh)} {_url_encode(payload)}\n"
    else:
        line = f"{sender} {receiver} data {_url_encode(payload)}\n"
    return line.encode("ascii")


def parse_mt_line(line: bytes) -> MtMessage:
    """Decode one line bearerbox wrote to the fake-SMSC client (trailing newline optional)."""
    raw = line
    line = line.rstrip(b"\r\n")
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        raise ValueError(f"malformed fake-SMSC line: {raw!r}")
    sender, receiver, kind = (p.decode("ascii", "replace") for p in parts[:3])
    rest = parts[3] if len(parts) == 4 else b""
    udh: bytes | None = None
    if kind == "text":
        payload = rest
    elif kind in ("data", "ucs2"):
        payload = _url_decode(rest)
    elif kind == "udh":
        fields = rest.split(b" ", 2)
        udh = _url_decode(fields[0])
        if len(fields) == 3 and fields[1] in (b"data", b"text", b"ucs2"):
            # Kannel 1.4.5: "udh <udh> <subtype> <data>"; text stays raw.
            payload = fields[2] if fields[1] == b"text" else _url_decode(fields[2])
        else:
            payload = _url_decode(b" ".join(fields[1:]))
    else:
        raise ValueError(f"unknown fake-SMSC message type {kind!r}: {raw!r}")
    return MtMessage(sender, receiver, kind, udh, payload, raw)


class FakeSmscClient:
    """TCP client for bearerbox's fake SMSC port: send MO, receive MT on a background thread."""

    def __init__(self, port: int, host: str = "127.0.0.1", *, connect_timeout: float = 10.0):
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._mt: queue.Queue[MtMessage] = queue.Queue()
        self._reader: threading.Thread | None = None
        self.errors: list[str] = []  # unparsable lines, kept for assertions
        self.closed = threading.Event()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.closed.clear()
        self._reader = threading.Thread(
            target=self._read_loop, name="fake-smsc-reader", daemon=True
        )
        self._reader.start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line:
                        continue
                    try:
                        self._mt.put(parse_mt_line(line))
                    except ValueError as err:
                        self.errors.append(str(err))
        except OSError:
            pass
        finally:
            self.closed.set()

    def send_mo(self, sender: str, receiver: str, payload: bytes, udh: bytes | None = None) -> None:
        """Inject one 8-bit mobile-originated message, as the operator would deliver it."""
        self.send_raw(format_mo_line(sender, receiver, payload, udh))

    def send_many(self, lines: list[bytes]) -> None:
        """Write many pre-formatted lines in one go (benchmarks)."""
        self.send_raw(b"".join(lines))

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            if self._sock is None:
                raise ConnectionError("fake SMSC client is not connected")
            self._sock.sendall(data)

    def receive_mt(self, timeout: float) -> MtMessage | None:
        """Next MT bearerbox sent to this SMSC, or None after ``timeout`` seconds."""
        try:
            return self._mt.get(timeout=timeout)
        except queue.Empty:
            return None
