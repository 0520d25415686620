"""Meter agent benchmark: idle resident memory and CPU, and durable writes per hour.

    .venv/bin/python bench/bench_meteragent.py [--idle-seconds 60]

1. Idle: provisions a throw-away data directory, starts the real service
   (``python -m meteragent run``, simulated energy source, HTTP transport whose send slots
   are hours away) as a child process and samples its VmRSS and utime+stime from /proc.
2. Writes: runs the agent for 48 virtual hours against the fake modem with a test clock and
   a server that acks every batch, and counts store transactions (each is one fsynced commit)
   by kind: readings, sends' bookkeeping, ack handling.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "meteragent" / "tests"))

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stats(pid: int) -> tuple[int, float]:
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return rss_kb, cpu


def bench_idle(seconds: float) -> dict[str, float]:
    from meteragent.bundle import Bundle

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        bundle = tmp_path / "bundle.json"
        bundle.write_bytes(
            Bundle(
                "BENCH00000000000000000001", 1, os.urandom(32), "+447700900100", datetime.now(UTC)
            ).to_bytes()
        )
        config = tmp_path / "meteragent.toml"
        config.write_text(
            f'data_dir = "{tmp_path / "data"}"\nlog_level = "WARNING"\n'
            '[transport]\nkind = "http"\nwebhook_url = "http://127.0.0.1:9/"\n'
            'secret = "x"\nmsisdn = "+447700900201"\n[energy]\nsource = "simulated"\n'
        )
        cmd = [sys.executable, "-m", "meteragent", "--config", str(config)]
        subprocess.run(
            [*cmd, "load-bundle", str(bundle)], check=True, capture_output=True, cwd=ROOT
        )
        proc = subprocess.Popen([*cmd, "run"], cwd=ROOT)
        try:
            time.sleep(3)  # start-up: imports, store verification, first reading
            rss0, cpu0 = proc_stats(proc.pid)
            time.sleep(seconds)
            rss1, cpu1 = proc_stats(proc.pid)
        finally:
            proc.terminate()
            code = proc.wait(10)
    return {
        "rss_kib": rss1,
        "rss_start_kib": rss0,
        "cpu_seconds": cpu1 - cpu0,
        "cpu_percent": 100 * (cpu1 - cpu0) / seconds,
        "exit_code_on_sigterm": code,
    }


def bench_writes(hours: int = 48) -> dict[str, object]:
    import serial
    from test_agent import KEY_ID, METER, T0, UTILITY, FakeServer
    from test_agent import ROOT as KEY

    from meteragent.agent import Agent, AgentConfig
    from meteragent.clock import FakeClock
    from meteragent.energy import SimulatedEnergySource
    from meteragent.keyfile import DeviceKeys
    from meteragent.modem import GsmModem
    from meteragent.modem.fake import FakeModem
    from meteragent.store import Store
    from meteragent.transport import ModemTransport

    kinds: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(T0 + 5, settle=0.05)
        server = FakeServer(clock)
        fake = FakeModem(on_submit=server.on_submit)
        server.fake = fake
        fake.start()
        modem = GsmModem(serial.Serial(fake.path, timeout=0), command_timeout=2, send_timeout=2)
        transport = ModemTransport(modem, UTILITY, clock)
        transport.open()
        store = Store(Path(tmp) / "meter.db")
        original = store._tx

        def counting_tx():
            import inspect

            kinds[inspect.stack()[1].function] += 1
            return original()

        store._tx = counting_tx  # type: ignore[method-assign]
        agent = Agent(
            store=store,
            keys=DeviceKeys(METER, KEY_ID, KEY, UTILITY),
            transport=transport,
            energy=SimulatedEnergySource(seed=1, start=T0),
            clock=clock,
            signing_public=bytes(32),
            config=AgentConfig(),
        )
        agent.start()
        kinds.clear()  # start-up writes (REBOOT event, integrity check) are once per boot
        agent.run(until=clock.monotonic() + hours * 3600)
        transport.close()
        store.close()
        fake.stop()
    total = sum(kinds.values())
    return {
        "hours": hours,
        "transactions": total,
        "per_hour": total / hours,
        "by_method": dict(kinds),
        "frames_sent": len(fake.sent),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    idle = bench_idle(args.idle_seconds)
    print(
        f"idle agent over {args.idle_seconds:.0f} s: RSS {idle['rss_kib'] / 1024:.1f} MiB "
        f"(at start {idle['rss_start_kib'] / 1024:.1f} MiB), CPU {idle['cpu_seconds']:.3f} s "
        f"= {idle['cpu_percent']:.3f} %, exit code on SIGTERM {idle['exit_code_on_sigterm']}"
    )
    writes = bench_writes()
    print(
        f"durable writes over {writes['hours']} h: {writes['transactions']} transactions "
        f"= {writes['per_hour']:.2f}/h; by store method: {writes['by_method']}; "
        f"SMS sent: {writes['frames_sent']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
