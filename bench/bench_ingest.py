"""Ingest benchmark: the SMS webhook (verify, decrypt, store, queue the ack) on PostgreSQL under
gunicorn, measured three ways in one run on this machine:

1. direct: N report frames (24 hourly readings each) POSTed to the webhook by C client threads,
   as Kannel's post-url would; messages/s, readings/s, p50/p99 latency;
2. through Kannel: the same kind of frames injected at Kannel's fake SMSC, delivered by
   bearerbox + smsbox to our webhook (the real pipeline); messages/s until all are stored;
3. Kannel alone: Kannel delivering to a trivial endpoint (bench/bench_kannel.py), the rate our
   webhook has to keep up with. The ratio (2) / (3) and (1) / (3) is printed.

    .venv/bin/python bench/bench_ingest.py                       # defaults below
    .venv/bin/python bench/bench_ingest.py --meters 500 --frames 8 --workers 4 --concurrency 16

Needs PostgreSQL and Redis on localhost (a scratch database `bench_ingest` is recreated) and,
for (2) and (3), the Debian packages kannel and kannel-extras. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import recreate_database  # noqa: E402

DB_NAME = "bench_ingest"


def environment(args: argparse.Namespace) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    kek = X25519PrivateKey.generate()
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "AUDIT_KEY": secrets.token_urlsafe(48),
        "SMS_GATEWAY_SECRET": secrets.token_urlsafe(24),
        "DEVICE_KEK_PUBLIC_KEY": base64.b64encode(kek.public_key().public_bytes_raw()).decode(),
        "DEVICE_KEK_PRIVATE_KEYS": base64.b64encode(kek.private_bytes_raw()).decode(),
        "SECURE_SSL_REDIRECT": "false",
        "SMS_INGEST_ENABLED": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CAP_BUNDLES_PER_HOUR": str(10 * args.meters + 10),
        "SMS_OUTBOUND_DAILY_CAP": "1000",
        "LOG_LEVEL": "WARNING",
    }


def provision(meters: int) -> list[tuple[str, object]]:
    """Meters with SIMs and active keys; returns (msisdn, SessionKeys) per meter."""
    from django.core.management import call_command
    from django.utils import timezone

    from devices.models import Meter, Sim
    from devices.services import issue_bundle, key_used
    from devices.tests.conftest import luhn_iccid
    from meteragent.bundle import parse_bundle
    from meteragent.protocol import derive_keys

    call_command("migrate", verbosity=0)
    fleet = []
    for i in range(meters):
        meter = Meter.objects.create(number=f"BENCH{i:020d}")
        sim = Sim.objects.create(
            msisdn=f"+4477{i:08d}", iccid=luhn_iccid(f"894450030219{i:06d}"), meter=meter
        )
        bundle = parse_bundle(issue_bundle(meter, by="bench"))
        key_used(meter, bundle.key_id, at=timezone.now())
        fleet.append((sim.msisdn, derive_keys(bundle.root_key, bundle.key_id)))
    return fleet


def frames_for(fleet, frames: int, first_counter: int = 1) -> list[tuple[str, bytes]]:
    """`frames` reports of 24 readings per meter, frame-major so load spreads over meters."""
    from meteragent.protocol import Reading, Report, encode_uplink

    now_hour = int(time.time()) // 3600
    work = []
    for k in range(frames):
        base_hour = now_hour - 24 * (frames - k) - 24 * (first_counter - 1)
        for msisdn, keys in fleet:
            readings = tuple(
                Reading(base_hour + h, 5_000_000 + 400 * (24 * k + h)) for h in range(24)
            )
            report = Report(int(time.time()), readings)
            work.append((msisdn, encode_uplink(report, keys=keys, counter=first_counter + k)))
    return work


def start_gunicorn(env: dict[str, str], workers: int, port: int, log: Path):
    cmd = [
        str(ROOT / ".venv/bin/gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "--chdir", str(ROOT), "utility.wsgi:application",
    ]  # fmt: skip
    out = open(log, "ab")  # noqa: SIM115 - stays open for the server's lifetime
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gunicorn did not start; see {log}")


def direct_load(work, *, port: int, secret: str, concurrency: int) -> dict[str, object]:
    import http.client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    index = iter(range(len(work)))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                return
            msisdn, frame = work[i]
            query = urllib.parse.urlencode(
                {"secret": secret, "from": msisdn, "to": "+447700900000", "id": f"b-{i}",
                 "coding": "1", "smsc": "bench"}, quote_via=urllib.parse.quote,
            )  # fmt: skip
            started = time.perf_counter()
            try:
                conn.request(
                    "POST", f"/sms/kannel/inbound?{query}", body=frame,
                    headers={"Content-Type": "application/octet-stream"},
                )  # fmt: skip
                response = conn.getresponse()
                body = response.read().decode()
            except OSError as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                body, response = str(exc), None
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response is None or response.status != 200 or body != "accepted":
                    errors.append(body[:80])

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.perf_counter() - start
    latencies.sort()
    return {
        "messages": len(work),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(total, 2),
        "messages_per_second": round(len(work) / total, 1),
        "readings_per_second": round(24 * len(work) / total, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


def through_kannel(work, *, port: int, secret: str, timeout: float) -> dict[str, object]:
    from e2e.harness.kannel import KannelGateway
    from e2e.harness.smsc import FakeSmscClient, format_mo_line
    from smsgateway.models import InboundMessage, InboundStatus

    before = InboundMessage.objects.filter(status=InboundStatus.ACCEPTED).count()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-kannel-"))
    gateway = KannelGateway.on_free_ports(
        workdir,
        inbound_url=f"http://127.0.0.1:{port}/sms/kannel/inbound?secret={secret}",
        log_level=2,
        max_pending_requests=512,
        http_request_retry=5,
        http_queue_delay=2,
    )
    with gateway, FakeSmscClient(gateway.smsc_port) as smsc:
        gateway.wait_smsc_online()
        lines = [format_mo_line(msisdn, "+447700900000", frame) for msisdn, frame in work]
        start = time.monotonic()
        for i in range(0, len(lines), 500):
            smsc.send_many(lines[i : i + 500])
        deadline = start + timeout
        done = 0
        while time.monotonic() < deadline:
            done = InboundMessage.objects.filter(status=InboundStatus.ACCEPTED).count() - before
            if done >= len(work):
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - start
    return {
        "messages": len(work),
        "accepted": done,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(done / elapsed, 1),
        "readings_per_second": round(24 * done / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=300)
    parser.add_argument("--frames", type=int, default=6, help="report frames per meter")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--concurrency", type=int, default=12, help="client threads (direct)")
    parser.add_argument("--skip-kannel", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    env = environment(args)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "utility.settings"
    recreate_database(DB_NAME)
    import django

    django.setup()
    print(f"provisioning {args.meters} meters…", file=sys.stderr)
    fleet = provision(args.meters)
    direct_work = frames_for(fleet, args.frames)
    kannel_work = frames_for(fleet, args.frames, first_counter=args.frames + 1)

    from django.db import connection

    connection.close()
    from e2e.harness.kannel import free_port, kannel_installed

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    server = start_gunicorn(env, args.workers, port, workdir / "gunicorn.log")
    result: dict[str, object] = {
        "command": shlex.join([".venv/bin/python", "bench/bench_ingest.py", *sys.argv[1:]]),
        "machine": (
            f"{os.cpu_count()} cpus, PostgreSQL on localhost, gunicorn {args.workers} sync workers"
        ),
    }
    try:
        print(f"direct: {len(direct_work)} frames…", file=sys.stderr)
        result["direct"] = direct_load(
            direct_work, port=port, secret=env["SMS_GATEWAY_SECRET"], concurrency=args.concurrency
        )
        if not args.skip_kannel and kannel_installed():
            print(f"through Kannel: {len(kannel_work)} frames…", file=sys.stderr)
            result["through_kannel"] = through_kannel(
                kannel_work, port=port, secret=env["SMS_GATEWAY_SECRET"], timeout=300
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not args.skip_kannel and kannel_installed():
        from bench.bench_kannel import run as kannel_rate

        print("Kannel alone…", file=sys.stderr)
        alone = kannel_rate(
            argparse.Namespace(
                count=5000, timeout=120.0, max_pending_requests=512, log_level=2,
                store="file", incoming_queue_limit=-1,
            )
        )  # fmt: skip
        result["kannel_alone"] = {"messages_per_second": alone["messages_per_second"]}
        k = alone["messages_per_second"]
        result["ratio_direct"] = round(result["direct"]["messages_per_second"] / k, 3)
        if "through_kannel" in result:
            result["ratio_through_kannel"] = round(
                result["through_kannel"]["messages_per_second"] / k, 3
            )
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
