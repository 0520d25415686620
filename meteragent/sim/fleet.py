"""Demo fleet: one real agent per provisioning bundle, talking to the portal's real webhook.

``python -m meteragent.sim.fleet --bundles DIR --webhook URL --secret S --outbox FILE
--data DIR [--backfill-hours N] [--send-every-seconds S]``

* every ``*.json`` bundle in DIR is one meter; its own SIM number is in the sidecar file
  ``<bundle>.msisdn`` (``meter.json.msisdn`` or ``meter.msisdn``);
* a sidecar ``<bundle>.bypass`` (JSON ``{"since": unix time, "fraction": 0.8}``) makes that
  household's simulated load partly bypass its meter from then on (a theft to detect);
* each agent has its own data directory ``DIR/<meter number>/`` (store, signing key), a
  :class:`~meteragent.sim.households.HouseholdEnergySource` (one of the committed realistic
  household profiles, chosen by its meter number), and an
  :class:`~meteragent.transport.HttpGatewayTransport` that POSTs frames as Kannel would;
* ``--backfill-hours`` stores that many past hourly readings first, so the portal shows
  history as soon as the first batch is in;
* downlink frames: the portal's demo SMS backend appends JSON lines
  ``{"to": msisdn, "payload": hex, ...}`` to the outbox file; the runner tails it and hands
  each frame to the agent with that msisdn (the agent verifies it like any SMS).

SIGINT/SIGTERM stop every agent cleanly. The agents block in their transports (no busy
polling); the outbox tail checks the file every ``tail_interval`` seconds (a demo helper,
not meter code).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meteragent.agent import Agent, AgentConfig
from meteragent.bundle import Bundle, BundleError, parse_bundle
from meteragent.clock import SystemClock
from meteragent.console import meter_seed
from meteragent.display import LogDisplay
from meteragent.energy import Bypass, EnergySource
from meteragent.keyfile import (
    DeviceKeys,
    load_keys,
    load_or_create_signing_key,
    public_bytes,
    save_keys,
)
from meteragent.scheduler import HOUR, hour_index
from meteragent.sim.households import HouseholdEnergySource
from meteragent.store import Store
from meteragent.transport import HttpGatewayTransport

log = logging.getLogger(__name__)


@dataclass
class FleetMeter:
    bundle: Bundle
    msisdn: str
    data_dir: Path
    transport: HttpGatewayTransport
    bypass: Bypass | None = None
    agent: Agent | None = None
    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def read_msisdn(bundle_path: Path) -> str:
    for candidate in (Path(f"{bundle_path}.msisdn"), bundle_path.with_suffix(".msisdn")):
        if candidate.exists():
            return candidate.read_text().strip()
    raise FileNotFoundError(f"no .msisdn sidecar for {bundle_path}")


def read_bypass(bundle_path: Path) -> Bypass | None:
    sidecar = Path(f"{bundle_path}.bypass")
    if not sidecar.exists():
        return None
    spec = json.loads(sidecar.read_text())
    return Bypass(since=float(spec["since"]), fraction=float(spec["fraction"]))


def backfill(store: Store, energy: EnergySource, hours: int, now: float) -> int:
    """Store the readings of the last ``hours`` hours (current hour included) that are not
    there yet. Returns how many were written."""
    latest = store.latest_reading()
    current = hour_index(now)
    written = 0
    for hour in range(current - hours + 1, current + 1):
        if latest is not None and hour <= latest.hour:
            continue
        result = energy.read(hour * HOUR)
        if result.wh is not None and store.record_reading(hour, result.wh):
            written += 1
    return written


class SimulatedLcd(LogDisplay):
    """The demo meter's LCD is the terminal: a claim code appears there, as it would on the
    meter's own display for the person standing in front of it (a real meter never logs it)."""

    def __init__(self, meter_number: str) -> None:
        super().__init__()
        self.meter_number = meter_number

    def show_code(self, code: str) -> None:
        super().show_code(code)
        print(f"[LCD of meter {self.meter_number}] CODE {code}", flush=True)


def _device_keys(meter: FleetMeter) -> DeviceKeys:
    """The meter's keys: its key file once it has one (it may have rotated since the bundle),
    else the bundle's, written to the key file as `load-bundle` does on a real meter."""
    path = meter.data_dir / "keys.json"
    if path.exists():
        return load_keys(path)
    keys = DeviceKeys.from_bundle(meter.bundle)
    save_keys(path, keys)
    return keys


class Fleet:
    def __init__(
        self,
        *,
        bundles: Path,
        webhook: str,
        secret: str,
        outbox: Path,
        data: Path,
        backfill_hours: int = 0,
        send_every_seconds: float | None = None,
        tail_interval: float = 0.5,
    ) -> None:
        self.webhook = webhook
        self.secret = secret
        self.outbox = outbox
        self.data = data
        self.backfill_hours = backfill_hours
        self.send_every_seconds = send_every_seconds
        self.tail_interval = tail_interval
        self.clock = SystemClock()
        self.meters: dict[str, FleetMeter] = {}
        self._stop = threading.Event()
        self._tail: threading.Thread | None = None
        for path in sorted(bundles.glob("*.json")):
            try:
                bundle = parse_bundle(path.read_bytes())
                msisdn = read_msisdn(path)
            except (OSError, BundleError) as exc:
                log.error("skipping %s: %s", path, exc)
                continue
            transport = HttpGatewayTransport(webhook, secret, msisdn, self.clock)
            self.meters[msisdn] = FleetMeter(
                bundle, msisdn, data / bundle.meter_number, transport, read_bypass(path)
            )

    def _run_meter(self, meter: FleetMeter) -> None:
        try:
            meter.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            signing, _ = load_or_create_signing_key(meter.data_dir / "signing.key")
            # The store is opened in this thread: an SQLite connection belongs to one thread.
            with Store(meter.data_dir / "meter.db") as store:
                now = self.clock.time()
                latest = store.latest_reading()
                energy = HouseholdEnergySource(
                    seed=meter_seed(meter.bundle.meter_number),
                    start=now - self.backfill_hours * HOUR,
                    start_wh=latest.wh if latest else 0,
                    bypass=meter.bypass,
                )
                if self.backfill_hours:
                    backfill(store, energy, self.backfill_hours, now)
                meter.agent = Agent(
                    store=store,
                    keys=_device_keys(meter),
                    transport=meter.transport,
                    energy=energy,
                    clock=self.clock,
                    signing_public=public_bytes(signing),
                    config=AgentConfig(send_every_seconds=self.send_every_seconds),
                    display=SimulatedLcd(meter.bundle.meter_number),
                )
                meter.ready.set()
                if not self._stop.is_set():
                    meter.agent.run()
        except Exception as exc:  # reported by the runner; one meter must not stop the rest
            meter.error = exc
            log.exception("agent for %s failed", meter.bundle.meter_number)
        finally:
            meter.ready.set()

    def _tail_outbox(self) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        self.outbox.touch(exist_ok=True)
        with self.outbox.open("rb") as fh:
            fh.seek(0, 2)  # only frames written from now on
            partial = b""
            while not self._stop.is_set():
                chunk = fh.read()
                if not chunk:
                    self._stop.wait(self.tail_interval)
                    continue
                partial += chunk
                *lines, partial = partial.split(b"\n")
                for line in lines:
                    self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
            to, payload = str(entry["to"]), bytes.fromhex(entry["payload"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a bad outbox line")
            return
        meter = self.meters.get(to)
        if meter is None:
            return  # for a meter this runner does not simulate
        sender = entry.get("from") or meter.bundle.utility_msisdn
        meter.transport.deliver(str(sender), payload)

    def start(self) -> None:
        self._tail = threading.Thread(target=self._tail_outbox, name="outbox-tail", daemon=True)
        self._tail.start()
        for meter in self.meters.values():
            meter.thread = threading.Thread(
                target=self._run_meter, args=(meter,), name=f"agent-{meter.msisdn}", daemon=True
            )
            meter.thread.start()
        for meter in self.meters.values():
            meter.ready.wait(30)

    def stop(self) -> None:
        """Stop every agent and the tail (safe from a signal handler)."""
        self._stop.set()
        for meter in self.meters.values():
            if meter.agent is not None:
                meter.agent.stop()
            else:
                meter.transport.interrupt()

    def join(self, timeout: float = 30) -> None:
        for meter in self.meters.values():
            if meter.thread is not None:
                meter.thread.join(timeout)
        if self._tail is not None:
            self._tail.join(timeout)

    def wait(self) -> None:
        """Block until stop() (e.g. from SIGTERM)."""
        self._stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meteragent.sim.fleet", description=__doc__)
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--webhook", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--backfill-hours", type=int, default=0)
    parser.add_argument("--send-every-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    fleet = Fleet(
        bundles=args.bundles,
        webhook=args.webhook,
        secret=args.secret,
        outbox=args.outbox,
        data=args.data,
        backfill_hours=args.backfill_hours,
        send_every_seconds=args.send_every_seconds,
    )
    if not fleet.meters:
        log.error("no bundles found in %s", args.bundles)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: fleet.stop())
    signal.signal(signal.SIGINT, lambda *_: fleet.stop())
    fleet.start()
    log.info("running %d simulated meters", len(fleet.meters))
    fleet.wait()
    fleet.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
