"""The service console: ``meteragent <command>`` (``python -m meteragent``).

Every command is a service action: it is written to the store's MACed service log and queued
as a SERVICE_ACTION event (with the action code below), which the next report carries to the
utility (S14, PC15) - a field visit cannot go unnoticed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from meteragent.agent import SOFTWARE_VERSION, Agent, AgentConfig
from meteragent.atomic import write_atomic
from meteragent.bundle import BundleError, parse_bundle
from meteragent.clock import SystemClock
from meteragent.config import Config, ConfigError, load_config
from meteragent.display import make_display, make_led
from meteragent.energy import Ade7953, Ade7953EnergySource, SimulatedEnergySource
from meteragent.energy.base import EnergySource
from meteragent.export import build_export
from meteragent.keyfile import (
    DeviceKeys,
    KeyFileError,
    load_keys,
    load_or_create_signing_key,
    load_signing_key,
    public_bytes,
    save_keys,
)
from meteragent.scheduler import SendSchedule, hour_index
from meteragent.store import (
    META_DAMAGED_STORE,
    Store,
    StoreDamagedError,
    StoreError,
    damaged_copies,
)
from meteragent.store import open_store as open_checked_store
from meteragent.transport import HttpGatewayTransport, ModemTransport, Transport
from meteragent.update import UpdateError, install_update

log = logging.getLogger("meteragent")


class Action(IntEnum):
    """SERVICE_ACTION event arguments (docs/meteragent.md)."""

    STATUS = 1
    READINGS = 2
    SEND_NOW = 3
    LOAD_BUNDLE = 4
    EXPORT = 5
    SELF_TEST = 6
    UPDATE = 7
    UPDATE_REFUSED = 8
    START = 9


def record_action(store: Store, action: Action, detail: str = "") -> None:
    now = int(time.time())
    store.log(now, "console", f"{action.name.lower()} {detail}".strip()[:200])
    store.add_event("service_action", hour_index(now), int(action))


def open_store(config: Config, *, recover: bool = False) -> Store:
    """The store. With ``recover`` (the service, which owns it), one that cannot be read is
    kept aside and a fresh one started (store.open_store); otherwise that is an error."""
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if recover:
        return open_checked_store(config.store_path, time.time())
    return Store(config.store_path)


def meter_seed(meter_number: str) -> int:
    return int.from_bytes(hashlib.sha256(meter_number.encode()).digest()[:8], "big")


def make_energy(config: Config, store: Store, keys: DeviceKeys, now: float) -> EnergySource:
    """The configured energy source, restored from the state saved with the last reading."""
    opts = config.energy
    latest = store.latest_reading()
    if opts.get("source", "ade7953") == "simulated":
        return SimulatedEnergySource(
            seed=int(opts.get("seed", meter_seed(keys.meter_number))),
            start=now,
            start_wh=latest.wh if latest else 0,
            annual_kwh=float(opts.get("annual_kwh", 3500)),
        )
    state = store.get_meta("energy_state")
    baseline: dict[str, Any] = {"baseline_wh": latest.wh if latest else 0}
    if state:
        wh, raw, at = state.split(",")
        baseline = {
            "baseline_wh": int(wh),
            "baseline_raw": None if raw == "None" else int(raw),
            "baseline_time": float(at),
        }
    chip = Ade7953.open(int(opts.get("i2c_bus", 1)), int(opts.get("address", 0x38)))
    return Ade7953EnergySource(
        chip,
        lsb_per_wh=int(opts["lsb_per_wh"]),
        max_power_w=float(opts.get("max_power_w", 23_000)),
        **baseline,
    )


def energy_state(source: EnergySource, now: float) -> dict[str, str]:
    state = getattr(source, "state", None)
    if state is None:
        return {}
    wh, raw = state
    return {"energy_state": f"{wh},{raw},{now}"}


def make_transport(config: Config, keys: DeviceKeys, clock: SystemClock) -> Transport:
    opts = config.transport
    if opts.get("kind", "modem") == "http":
        return HttpGatewayTransport(
            str(opts["webhook_url"]), str(opts["secret"]), str(opts["msisdn"]), clock
        )
    # Imported only for a modem: its driver loads the serial-port library, which a box that
    # posts to a test gateway need not have.
    from meteragent.modem import GsmModem

    port, baudrate = str(opts.get("port", "/dev/ttyUSB2")), int(opts.get("baudrate", 115200))
    transport = ModemTransport(
        GsmModem.open(port, baudrate),
        keys.utility_msisdn,
        clock,
        pin=opts.get("pin") or None,
        reopen=lambda: GsmModem.open(port, baudrate),
    )
    transport.open()
    return transport


def build_agent(config: Config, store: Store, transport: Transport | None = None) -> Agent:
    keys = load_keys(config.keys_path)
    offset = store.get_meta("clock_offset")
    clock = SystemClock(float(offset) if offset else 0.0)
    signing = load_signing_key(config.signing_key_path)
    sched = config.schedule
    agent_config = AgentConfig(
        schedule=SendSchedule(
            int(sched.get("first_minute", 0)),
            int(sched.get("second_minute", 720)),
            int(sched.get("jitter_minutes", 719)),
        ),
        send_every_seconds=sched.get("send_every_seconds"),
    )
    display_opts = dict(config.display)
    led = make_led(display_opts.pop("led", None))
    display = make_display(str(display_opts.pop("kind", "log")), **display_opts)
    return Agent(
        store=store,
        keys=keys,
        transport=transport or make_transport(config, keys, clock),
        energy=make_energy(config, store, keys, clock.time()),
        clock=clock,
        signing_public=public_bytes(signing),
        display=display,
        led=led,
        config=agent_config,
        on_energy_state=energy_state,
    )


def _daemon_pid(config: Config) -> int | None:
    try:
        pid = int(config.pid_path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@contextlib.contextmanager
def _pidfile(config: Config) -> Iterator[None]:
    write_atomic(config.pid_path, f"{os.getpid()}\n".encode(), 0o644)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            config.pid_path.unlink()


# ---------------------------------------------------------------------- commands


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, recover=True) as store:
        record_action(store, Action.START, SOFTWARE_VERSION)
        agent = build_agent(config, store)
        signal.signal(signal.SIGTERM, lambda *_: agent.stop())
        signal.signal(signal.SIGINT, lambda *_: agent.stop())
        signal.signal(signal.SIGUSR1, lambda *_: agent.request_send())
        with _pidfile(config):
            log.info("meteragent %s running for meter %s", SOFTWARE_VERSION,
                     agent.keys.meter_number)  # fmt: skip
            agent.run()
        agent.transport.close()
        log.info("meteragent stopped")
    return 0


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    with open_store(config) as store:
        record_action(store, Action.STATUS)
        keys = load_keys(config.keys_path)
        latest = store.latest_reading()
        report = store.verify()
        status = {
            "meter_number": keys.meter_number,
            "key_id": keys.key_id,
            "software_version": SOFTWARE_VERSION,
            "latest_reading": None if latest is None else {"hour": latest.hour, "wh": latest.wh},
            "acknowledged_up_to": store.acknowledged_up_to(),
            "unacknowledged": len(store.unacknowledged_readings()),
            "pending_events": len(store.pending_events()),
            "send_minutes_utc": list(
                SendSchedule.from_text(store.get_meta("schedule") or "0,720,719").minutes(
                    keys.meter_number
                )
            ),
            "store_ok": report.ok,
            "daemon_pid": _daemon_pid(config),
        }
        print(json.dumps(status, indent=2))
    return 0


def cmd_readings(config: Config, args: argparse.Namespace) -> int:
    with open_store(config) as store:
        record_action(store, Action.READINGS, f"hours={args.hours}")
        latest = store.latest_reading()
        since = 0 if latest is None else latest.hour - args.hours + 1
        acked = store.acknowledged_up_to() or 0
        for r in store.readings(since):
            stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.hour * 3600))
            print(f"{stamp}Z  {r.wh:>12d} Wh  {'acked' if r.hour <= acked else 'pending'}")
    return 0


def cmd_send_now(config: Config, args: argparse.Namespace) -> int:
    pid = _daemon_pid(config)
    with open_store(config, recover=pid is None) as store:
        record_action(store, Action.SEND_NOW)
        if pid is not None:
            os.kill(pid, signal.SIGUSR1)  # the running agent owns the modem
            print(f"asked the running agent (pid {pid}) to send now")
            return 0
        agent = build_agent(config, store)
        agent.start()
        counters = agent.send_now()
        deadline = agent.clock.monotonic() + args.wait
        while agent.clock.monotonic() < deadline and agent.stats.acks == 0:
            incoming = agent.transport.wait(deadline)
            if incoming is not None:
                agent.handle_message(*incoming)
        agent.transport.close()
        print(f"sent {len(counters)} frames; ack {'received' if agent.stats.acks else 'pending'}")
    return 0


def cmd_load_bundle(config: Config, args: argparse.Namespace) -> int:
    try:
        bundle = parse_bundle(Path(args.file).read_bytes())
    except (OSError, BundleError) as exc:
        print(f"bundle refused: {exc}", file=sys.stderr)
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if config.keys_path.exists() and not args.force:
        current = load_keys(config.keys_path)
        if current.meter_number != bundle.meter_number:
            print(
                f"this device is provisioned as {current.meter_number}; use --force to replace",
                file=sys.stderr,
            )
            return 2
    save_keys(config.keys_path, DeviceKeys.from_bundle(bundle))
    key, created = load_or_create_signing_key(config.signing_key_path)
    # Provisioning may meet a store it cannot read (an interrupted first start): replaced.
    with open_store(config, recover=_daemon_pid(config) is None) as store:
        record_action(store, Action.LOAD_BUNDLE, f"{bundle.meter_number} key {bundle.key_id}")
    print(f"meter {bundle.meter_number}, key id {bundle.key_id} loaded")
    print(f"signing public key ({'new' if created else 'existing'}): {public_bytes(key).hex()}")
    print("delete the bundle file now: it holds the meter's root key")
    return 0


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    with open_store(config) as store:
        keys = load_keys(config.keys_path)
        data = build_export(
            store,
            meter_number=keys.meter_number,
            signing_key=load_signing_key(config.signing_key_path),
            created_at=int(time.time()),
            software_version=SOFTWARE_VERSION,
            since_hour=args.since_hour,
        )
        write_atomic(Path(args.file), data, 0o644)
        record_action(store, Action.EXPORT, f"{len(data)} bytes")
    print(f"wrote {args.file} ({len(data)} bytes)")
    return 0


def cmd_self_test(config: Config, args: argparse.Namespace) -> int:
    results: list[tuple[str, bool, str]] = []
    store: Store | None = None
    readable = False
    try:
        store = open_store(config)
    except StoreDamagedError as exc:
        results.append(("store file", False, str(exc)))
    with store or contextlib.nullcontext():
        if store is not None:
            report = store.verify()
            readable = not report.damaged
            if readable:  # a damaged file takes no writes
                record_action(store, Action.SELF_TEST)
            results.append(("store MACs and chain", report.ok, report.chain_problem or ""))
            check = store.integrity_check()
            results.append(("store file", check == "ok", "" if check == "ok" else check))
        kept = damaged_copies(config.store_path)
        if kept:
            why = store.get_meta(META_DAMAGED_STORE) if readable and store is not None else None
            detail = why or ", ".join(p.name for p in kept)
            results.append(("no damaged store kept", False, f"running on a fresh store; {detail}"))
        try:
            keys = load_keys(config.keys_path)
            load_signing_key(config.signing_key_path)
            results.append(("keys", True, keys.meter_number))
        except KeyFileError as exc:
            results.append(("keys", False, str(exc)))
            keys = None
        if keys is not None and readable and store is not None:
            try:
                source = make_energy(config, store, keys, time.time())
                result = source.read(time.time())
                results.append(("energy source", result.ok, result.error or f"{result.wh} Wh"))
            except (OSError, ValueError, KeyError) as exc:
                results.append(("energy source", False, str(exc)))
        if _daemon_pid(config) is None and keys is not None:
            try:
                transport = make_transport(config, keys, SystemClock())
                results.append(("transport", True, type(transport).__name__))
                transport.close()
            except Exception as exc:  # any failure here is a self-test finding, not a crash
                results.append(("transport", False, str(exc)))
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def cmd_update(config: Config, args: argparse.Namespace) -> int:
    keys = load_keys(config.keys_path)
    with open_store(config) as store:
        try:
            installed = install_update(
                Path(args.file), Path(args.signature), keys.release_public_key, config.install_root
            )
        except (UpdateError, OSError) as exc:
            record_action(store, Action.UPDATE_REFUSED, str(exc))
            log.error("update refused: %s", exc)
            print(f"update refused: {exc}", file=sys.stderr)
            return 2
        record_action(store, Action.UPDATE, installed.version)
    print(f"installed {installed.version}; restart the service to run it")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meteragent", description="Meter agent service console")
    parser.add_argument("--config", type=Path, help="TOML config (default /etc/meteragent/...)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the agent (systemd service)").set_defaults(fn=cmd_run)
    sub.add_parser("status", help="meter, readings and store state").set_defaults(fn=cmd_status)
    p = sub.add_parser("readings", help="recent readings")
    p.add_argument("--hours", type=int, default=24)
    p.set_defaults(fn=cmd_readings)
    p = sub.add_parser("send-now", help="send unacknowledged readings now")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the ack")
    p.set_defaults(fn=cmd_send_now)
    p = sub.add_parser("load-bundle", help="provision: load the installer's bundle")
    p.add_argument("file")
    p.add_argument("--force", action="store_true", help="replace another meter's keys")
    p.set_defaults(fn=cmd_load_bundle)
    p = sub.add_parser("export", help="signed readings export for a field engineer")
    p.add_argument("file")
    p.add_argument("--since-hour", type=int, default=0)
    p.set_defaults(fn=cmd_export)
    sub.add_parser("self-test", help="check store, keys, hardware").set_defaults(fn=cmd_self_test)
    p = sub.add_parser("update", help="install a software package signed by the utility")
    p.add_argument("file")
    p.add_argument("signature")
    p.set_defaults(fn=cmd_update)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.fn(config, args))
    except (KeyFileError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
