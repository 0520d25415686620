"""The anchor: how many MO messages per second Kannel delivers to the fastest trivial endpoint.

Run from the repository root (needs the Debian packages kannel and kannel-extras)::

    .venv/bin/python bench/bench_kannel.py                 # 5000 messages, tuned settings
    .venv/bin/python bench/bench_kannel.py --count 20000 --max-pending-requests 128

Pipeline measured: fake-SMSC client (e2e/harness/smsc.py) -> bearerbox -> smsbox -> HTTP POST
(post-url, 140-byte 8-bit bodies) -> uvicorn (uvloop, httptools, no access log) running the raw
ASGI app bench/trivial_endpoint.py, which counts requests in a file. `--endpoint-workers`
chooses uvicorn's worker processes (default 1: on two cores a second one competes with
Kannel). The clock starts before the first MO line is written and stops when the endpoint has
counted all N requests. Loopback only; everything is stopped at the end, also on timeout or
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from e2e.harness.kannel import (  # noqa: E402 - after the sys.path tweak
    INSTALL_HINT,
    KannelGateway,
    free_port,
    kannel_installed,
)
from e2e.harness.smsc import FakeSmscClient, format_mo_line  # noqa: E402

UVICORN = ROOT / ".venv" / "bin" / "uvicorn"


def start_endpoint(
    port: int, count_file: Path, log: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BENCH_COUNT_FILE=str(count_file))
    cmd = [
        str(UVICORN),
        "--workers", str(workers),
        "--loop", "uvloop",
        "--http", "httptools",
        "--no-access-log",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--app-dir", str(ROOT / "bench"),
        "--log-level", "warning",
        "trivial_endpoint:app",
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("uvicorn did not start listening in 15 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def counted(count_file: Path) -> int:
    try:
        return count_file.stat().st_size
    except FileNotFoundError:
        return 0


def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-kannel-"))
    count_file = workdir / "count"
    port = free_port()
    workers = getattr(args, "endpoint_workers", 1)
    endpoint = start_endpoint(port, count_file, workdir / "uvicorn.log", workers)
    try:
        gateway = KannelGateway.on_free_ports(
            workdir,
            inbound_url=f"http://127.0.0.1:{port}/sms/kannel/inbound",
            log_level=args.log_level,
            max_pending_requests=args.max_pending_requests,
            http_request_retry=3,
            http_queue_delay=5,
            store_type=None if args.store == "none" else args.store,
            core_extra=f"sms-incoming-queue-limit = {args.incoming_queue_limit}\n",
        )
        with gateway, FakeSmscClient(gateway.smsc_port) as smsc:
            gateway.wait_smsc_online()
            # Warm-up: the whole pipeline is up before the clock starts.
            smsc.send_mo("+440000000000", "12345", b"\x00warmup")
            deadline = time.monotonic() + 10
            while counted(count_file) < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            base = counted(count_file)
            if base < 1:
                raise RuntimeError(f"warm-up message never reached the endpoint; see {workdir}")
            # 140-byte binary bodies, distinct senders like a fleet of meters.
            lines = [
                format_mo_line(f"+4477{i:08d}", "12345", (i.to_bytes(4, "big") * 35))
                for i in range(args.count)
            ]
            cpu_before = cpu.snapshot()
            start = time.monotonic()
            for i in range(0, len(lines), 500):
                smsc.send_many(lines[i : i + 500])
            sent = time.monotonic()
            deadline = start + args.timeout
            while counted(count_file) - base < args.count:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            elapsed = time.monotonic() - start
            got = counted(count_file) - base
            cpu_used = cpu.used_since(cpu_before, cpu.snapshot())
    finally:
        stop(endpoint)
    complete = got >= args.count
    return {
        "messages": args.count,
        "delivered": got,
        "complete": complete,
        "seconds": round(elapsed, 3),
        "write_seconds": round(sent - start, 3),
        "cpu_seconds": cpu_used,
        "messages_per_second": round(got / elapsed, 1) if elapsed else None,
        "settings": {
            "max-pending-requests": args.max_pending_requests,
            "log-level": args.log_level,
            "store-type": args.store,
            "sms-incoming-queue-limit": args.incoming_queue_limit,
            "endpoint": f"raw ASGI on uvicorn, {workers} worker(s), uvloop, httptools",
        },
        "machine": f"{platform.node()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "workdir": str(workdir),
        "command": shlex.join([".venv/bin/python", "bench/bench_kannel.py", *sys.argv[1:]]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="MO messages to send")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after seconds")
    parser.add_argument("--max-pending-requests", type=int, default=512)
    parser.add_argument("--log-level", type=int, default=2, help="Kannel log level (0 = debug)")
    parser.add_argument("--store", choices=("file", "spool", "none"), default="file")
    parser.add_argument("--incoming-queue-limit", type=int, default=-1)
    parser.add_argument("--endpoint-workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not kannel_installed():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"command:      {result['command']}")
        print(f"delivered:    {result['delivered']}/{result['messages']}")
        print(
            f"total time:   {result['seconds']} s (MO lines written in {result['write_seconds']} s)"
        )
        print(f"rate:         {result['messages_per_second']} messages/s")
        print(f"settings:     {result['settings']}")
        print(f"machine:      {result['machine']}")
        print(f"logs:         {result['workdir']}")
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
