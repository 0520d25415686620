"""How frames leave and reach the agent: a GSM modem, or (demo) the portal's HTTP webhook.

:class:`Transport` is what the agent needs: ``send`` one 140-byte frame, ``wait`` until a
deadline for an incoming binary SMS (returning early when one arrives; never busy-polling),
``interrupt`` a wait from a signal handler or another thread, ``close``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from typing import Protocol

from meteragent.clock import Clock
from meteragent.modem import GsmModem, ModemError, ModemPortError, Urc
from meteragent.protocol import pdu as sms

log = logging.getLogger(__name__)

Incoming = tuple[str, bytes]  # (sender MSISDN, 8-bit user data)


class TransportError(Exception):
    """A frame could not be handed to the network (it stays unacknowledged and is resent)."""


class Transport(Protocol):
    def send(self, to: str, payload: bytes) -> None: ...

    def wait(self, deadline: float) -> Incoming | None:
        """Block until an incoming message (returned), an interrupt or ``deadline`` (a
        monotonic time of the agent's clock) - then None."""
        ...

    def interrupt(self) -> None:
        """Make a running or the next ``wait`` return None now (async-signal safe)."""
        ...

    def close(self) -> None: ...


class Waker:
    """A self-pipe: ``wake`` is one ``write`` and therefore safe in a signal handler."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)

    def wake(self) -> None:
        # A full pipe means a wake-up is pending anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self.w, b"!")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.r, 512):
                pass

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def is_number(address: sms.Address, msisdn: str) -> bool:
    """Is ``address`` the phone number ``msisdn``, type of number included? An alphanumeric
    sender ID can spell any digits (even ``+44...``) and is never a number; ``+`` numbers must
    come as international, others as unknown or national."""
    if address.alphanumeric or address.number != msisdn:
        return False
    return address.international == msisdn.startswith("+")


# Reopening the serial port after an error: the first wait, doubled up to the last.
REOPEN_BACKOFF = (1.0, 300.0)


class ModemTransport:
    """Frames as 8-bit single-part SMS through a :class:`GsmModem`.

    Incoming messages are announced by ``+CMTI`` (new SMS stored on the SIM): the transport
    reads the message, deletes it (the SIM holds ~30), and passes on only uncompressed 8-bit
    SMS-DELIVERs from the utility's number (digits and type of number). Anything else is logged
    and dropped, so the agent never parses a message from a stranger (a forged frame from the
    right number still has to pass the AEAD).

    A serial error (the USB modem reset, the port vanished) does not end the service: ``reopen``
    makes a new :class:`GsmModem`, tried with backoff from ``wait``; meanwhile sends fail with
    TransportError (their readings go at the next slot).
    """

    def __init__(
        self,
        modem: GsmModem,
        utility_msisdn: str,
        clock: Clock,
        *,
        pin: str | None = None,
        reopen: Callable[[], GsmModem] | None = None,
    ) -> None:
        self.modem: GsmModem | None = modem
        self.utility_msisdn = utility_msisdn
        self.clock = clock
        self.pin = pin
        self.reopen = reopen
        self.waker = Waker()
        self._inbox: deque[Incoming] = deque()
        self.rejected = 0
        self.reopened = 0
        self._backoff = REOPEN_BACKOFF[0]
        self._retry_at = 0.0  # monotonic time of the next reopen attempt

    def open(self) -> None:
        """Initialise the modem and collect what arrived while the agent was not running."""
        assert self.modem is not None
        self.modem.initialise(self.pin)
        for stored in self.modem.list_messages():
            self._accept(stored.index, stored.pdu)

    def send(self, to: str, payload: bytes) -> None:
        if self.modem is None:
            raise TransportError("modem port is being reopened")
        try:
            self.modem.send(sms.encode_submit(to, payload))
        except sms.PduError as exc:
            raise TransportError(f"modem send failed: {exc}") from exc
        except ModemError as exc:
            if isinstance(exc, ModemPortError):
                self._port_failed(exc)
            raise TransportError(f"modem send failed: {exc}") from exc

    def interrupt(self) -> None:
        self.waker.wake()

    def _port_failed(self, exc: Exception) -> None:
        """Close the broken port; ``wait`` reopens it (with backoff) if it can."""
        log.error("modem port failed: %s; reopening", exc)
        if self.modem is not None:
            with contextlib.suppress(Exception):  # the port is broken already
                self.modem.close()
            self.modem = None
        if self.reopen is None:
            raise TransportError(f"modem port failed: {exc}") from exc
        self._retry_at = self.clock.monotonic()

    def _try_reopen(self) -> bool:
        assert self.reopen is not None
        try:
            modem = self.reopen()
            self.modem = modem
            self.open()
        except (ModemError, OSError, ValueError) as exc:
            if self.modem is not None:
                with contextlib.suppress(Exception):
                    self.modem.close()
                self.modem = None
            log.warning("modem port not reopened (%s); next try in %.0f s", exc, self._backoff)
            self._retry_at = self.clock.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, REOPEN_BACKOFF[1])
            return False
        self.reopened += 1
        self._backoff = REOPEN_BACKOFF[0]
        log.warning("modem port reopened")
        return True

    def wait(self, deadline: float) -> Incoming | None:
        while True:
            if self._inbox:
                return self._inbox.popleft()
            if self.modem is None:
                if self.clock.monotonic() >= self._retry_at and self._try_reopen():
                    continue
                if self._sleep(min(deadline, self._retry_at), deadline):
                    return None
                continue
            try:
                if self._wait_modem(self.modem, deadline):
                    return None
            except (ModemPortError, OSError, ValueError) as exc:  # select on a dead port too
                self._port_failed(exc)
            except ModemError as exc:  # an answer that makes no sense: logged, not fatal
                log.warning("modem: %s", exc)

    def _sleep(self, until: float, deadline: float) -> bool:
        """Wait without a port until ``until``; True if the wait for ``deadline`` is over."""
        ready, _, _ = select.select([self.waker.r], [], [], self.clock.timeout_until(until))
        if ready:
            self.waker.drain()
            return True
        self.clock.waited_until(until)
        return self.clock.monotonic() >= deadline

    def _wait_modem(self, modem: GsmModem, deadline: float) -> bool:
        """One round of waiting on the port; True when the wait is over (deadline, interrupt)."""
        # URCs queued during a command, or lines already buffered, come first.
        urc = modem.wait_for_urc(0)
        if urc is not None:
            self._on_urc(urc)
            return False
        timeout = self.clock.timeout_until(deadline)
        port_fd = modem.at.port.fileno()
        ready, _, _ = select.select([port_fd, self.waker.r], [], [], timeout)
        if self.waker.r in ready:
            self.waker.drain()
            return True
        if port_fd in ready:
            urc = modem.wait_for_urc(1.0)
            if urc is not None:
                self._on_urc(urc)
            return False
        self.clock.waited_until(deadline)
        return self.clock.monotonic() >= deadline

    def _on_urc(self, urc: Urc) -> None:
        assert self.modem is not None
        try:
            if urc.name == "+CMTI" and len(urc.args) >= 2:
                index = int(urc.args[1])
                self._accept(index, self.modem.read_message(index).pdu)
            elif urc.name == "+CMT" and urc.pdu:
                self._accept(None, bytes.fromhex(urc.pdu))
        except ModemPortError:
            raise
        except (ModemError, ValueError) as exc:
            log.warning("could not fetch incoming SMS (%s): %s", urc.line, exc)

    def _accept(self, index: int | None, pdu: bytes) -> None:
        if index is not None:
            assert self.modem is not None
            try:
                # Delete first: a message that cannot be parsed must not fill the SIM.
                self.modem.delete_message(index)
            except ModemError as exc:
                log.warning("could not delete SMS %s: %s", index, exc)
        try:
            deliver = sms.decode_deliver(pdu)
        except sms.PduError as exc:
            self.rejected += 1
            log.warning("rejected incoming SMS: not a valid SMS-DELIVER (%s)", exc)
            return
        sender = deliver.originator.number
        if not is_number(deliver.originator, self.utility_msisdn):
            self.rejected += 1
            log.warning("rejected incoming SMS from %r (type of address %#x): not the utility's "
                        "number", sender, deliver.originator.toa)  # fmt: skip
            return
        if not deliver.is_8bit or deliver.concat is not None:
            self.rejected += 1
            log.warning("rejected incoming SMS from %s: not a single 8-bit message", sender)
            return
        self._inbox.append((sender, deliver.data))

    def close(self) -> None:
        if self.modem is not None:
            self.modem.close()
        self.waker.close()


class HttpGatewayTransport:
    """Demo transport: each uplink frame is POSTed to the portal's SMS webhook exactly as
    Kannel's smsbox ``post-url`` would deliver a binary MO message; downlink frames are fed
    in by whoever watches the portal's outbox (:meth:`deliver`)."""

    def __init__(
        self,
        webhook_url: str,
        secret: str,
        msisdn: str,
        clock: Clock,
        *,
        smsc: str = "demo",
        timeout: float = 10.0,
    ) -> None:
        if urllib.parse.urlsplit(webhook_url).scheme not in ("http", "https"):
            raise ValueError("webhook URL must be http(s)")
        self.webhook_url = webhook_url
        self.secret = secret
        self.msisdn = msisdn
        self.clock = clock
        self.smsc = smsc
        self.timeout = timeout
        self._queue: queue.Queue[Incoming | None] = queue.Queue()

    def url_for(self, to: str) -> str:
        params = [
            ("secret", self.secret),
            ("from", self.msisdn),
            ("to", to),
            ("id", str(uuid.uuid4())),
            ("coding", "1"),
            ("smsc", self.smsc),
        ]
        query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params)
        sep = "&" if "?" in self.webhook_url else "?"
        return f"{self.webhook_url}{sep}{query}"

    def send(self, to: str, payload: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url_for(to),
            data=bytes(payload),
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                if not 200 <= response.status < 300:
                    raise TransportError(f"webhook answered {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise TransportError(f"webhook POST failed: {exc}") from exc

    def deliver(self, sender: str, payload: bytes) -> None:
        """A downlink frame for this meter (thread-safe)."""
        self._queue.put((sender, bytes(payload)))

    def interrupt(self) -> None:
        self._queue.put(None)

    def wait(self, deadline: float) -> Incoming | None:
        while True:
            try:
                item = self._queue.get(timeout=self.clock.timeout_until(deadline))
            except queue.Empty:
                self.clock.waited_until(deadline)
                if self.clock.monotonic() >= deadline:
                    return None
                continue
            return item

    def close(self) -> None:
        self.interrupt()
