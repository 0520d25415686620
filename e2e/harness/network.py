"""A small operator network: meters' GSM modems on one side, Kannel's SMSC link on the other.

Each simulated meter has a FakeModem (the real AT dialogue over a pty, driven by the meter
agent's real modem driver). What a meter submits (SMS-SUBMIT PDU) goes to Kannel as a
mobile-originated message from that meter's number; what Kannel sends to a meter's number
comes out of the fake SMSC and is delivered to that meter's modem as an SMS-DELIVER. The network
can also inject forged or replayed messages at the SMSC, as an attacker on the operator side.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from meteragent.modem.fake import FakeModem
from meteragent.protocol.pdu import decode_submit

from .smsc import FakeSmscClient

logger = logging.getLogger(__name__)


@dataclass
class NetworkStats:
    uplink: int = 0
    downlink: int = 0
    undeliverable: int = 0
    uplink_frames: dict[str, list[bytes]] = field(default_factory=dict)


class OperatorNetwork:
    """Bridges FakeModems (by MSISDN) and one fake-SMSC connection to bearerbox."""

    def __init__(self, smsc: FakeSmscClient, *, utility_msisdn: str) -> None:
        self.smsc = smsc
        self.utility_msisdn = utility_msisdn
        self.modems: dict[str, FakeModem] = {}
        self.stats = NetworkStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._downlink_loop, daemon=True)
        self._lock = threading.Lock()

    def attach(self, msisdn: str) -> FakeModem:
        """A new modem for the meter whose SIM has `msisdn`, already wired to the network."""
        modem = FakeModem(on_submit=lambda tpdu, m=msisdn: self._uplink(m, tpdu))
        modem.start()
        self.modems[msisdn] = modem
        return modem

    def start(self) -> OperatorNetwork:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for modem in self.modems.values():
            modem.stop()

    def inject_mo(self, sender: str, payload: bytes) -> None:
        """An attacker (or a replaying SMSC) sends `payload` as if from `sender`."""
        self.smsc.send_mo(sender, self.utility_msisdn, payload)

    def _uplink(self, msisdn: str, tpdu: bytes) -> None:
        submit = decode_submit(tpdu)
        with self._lock:
            self.stats.uplink += 1
            self.stats.uplink_frames.setdefault(msisdn, []).append(submit.data)
        self.smsc.send_mo(msisdn, submit.destination.number, submit.data)

    def _downlink_loop(self) -> None:
        while not self._stop.is_set():
            mt = self.smsc.receive_mt(timeout=0.2)
            if mt is None:
                continue
            modem = self.modems.get(mt.receiver)
            if modem is None:
                self.stats.undeliverable += 1
                logger.warning("no meter with number %s on this network", mt.receiver)
                continue
            with self._lock:
                self.stats.downlink += 1
            modem.inject_sms(mt.sender, mt.payload)
