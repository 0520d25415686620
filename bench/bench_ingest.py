"""Ingest benchmark: does our side keep up with Kannel? Measured in one run, on this machine,
PostgreSQL and Redis on localhost, each Kannel figure beside the anchor measured just before it:

1. webhook: the ingest service (gunicorn, uvicorn workers, utility.ingest_asgi) taking real
   report frames as Kannel's post-url delivers them, loaded by wrk for a fixed time: messages/s,
   p50/p99 latency. Nothing else runs: this is what the webhook can take.
2. Kannel into the webhook: frames injected at the fake SMSC, delivered by bearerbox + smsbox
   to the ingest service (no workers running): messages/s until every frame is stored.
3. processing: that backlog verified, decrypted, stored and acked by Celery sms workers (the
   batch drain): messages/s, and readings/s counted as rows added to the readings table.
4. all at once: fake SMSC -> Kannel -> ingest service -> sms workers on the same cores:
   messages/s until every frame is accepted, readings rows/s, and the time from arrival at the
   webhook to accepted (p50/p99).
5. the anchor (bench/bench_kannel.py): Kannel delivering to the fastest trivial endpoint,
   nginx answering 200 (`--anchor uvicorn`: a raw ASGI app on uvicorn). It is measured right
   before (2) and before (4), with as many frames, and each of those rates is divided by its
   own anchor.

    .venv/bin/python bench/bench_ingest.py                          # defaults below
    .venv/bin/python bench/bench_ingest.py --meters 500 --frames 2 --skip-kannel
    .venv/bin/python bench/bench_ingest.py --py-spy var/spy         # profiles of each step
    .venv/bin/python bench/bench_ingest.py --kannel-pairs 5         # (5) and (2) only, in turn
    .venv/bin/python bench/bench_ingest.py --kannel-pairs 5 --kannel-cpus 0   # Kannel on CPU 0

Every step also reports the CPU seconds each component used (`cpu_seconds`: Kannel, the
ingest service, the workers, this database's PostgreSQL backends and those of any database
that ended during the step; bench/cpu.py), so where the cores went is measured beside each
rate.

Needs PostgreSQL and Redis on localhost (a scratch database `bench_ingest` is recreated), wrk
(Debian package `wrk`) for (1), and the Debian packages kannel and kannel-extras for (2), (4)
and (5), nginx-light for (5). Loopback only; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from bench.scratch import ingest_environment, recreate_database  # noqa: E402

DB_NAME = "bench_ingest"
INGEST_APPLICATION_NAME = "bench-ingest-service"
UTILITY_MSISDN = "+447700900000"
WRK_SCRIPT = ROOT / "bench" / "wrk_inbound.lua"


def provision(meters: int) -> list[tuple[str, object]]:
    """Meters with SIMs and active keys; returns (msisdn, SessionKeys) per meter."""
    from django.core.management import call_command
    from django.utils import timezone

    from devices.models import Meter, Sim
    from devices.services import issue_bundle, key_used
    from meteragent.bundle import parse_bundle
    from meteragent.protocol import derive_keys
    from testing.devices import luhn_iccid

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
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{meters} meters", file=sys.stderr)
    return fleet


def frames_for(
    fleet,
    frames: int,
    first_counter: int = 1,
    *,
    days_back: int | None = None,
    now_hour: int | None = None,
) -> list[tuple[str, bytes]]:
    """`frames` reports of 24 readings per meter, counters from `first_counter`, frame-major so
    load spreads over meters. The first covers the day that began `days_back` days ago (by
    default `frames`: the last one ends with the hour just past), each next one the day after,
    as a meter reports; the register grows 400 Wh an hour throughout. Phases that are to
    follow each other pass the same `now_hour`."""
    from meteragent.protocol import Reading, Report, encode_uplink

    now_hour = int(time.time()) // 3600 if now_hour is None else now_hour
    days_back = frames if days_back is None else days_back
    year_ago = now_hour - 24 * 366
    work = []
    for k in range(frames):
        base_hour = now_hour - 24 * (days_back - k)
        for msisdn, keys in fleet:
            readings = tuple(
                Reading(hour, 5_000_000 + 400 * (hour - year_ago))
                for hour in range(base_hour, base_hour + 24)
            )
            report = Report(int(time.time()), readings)
            work.append((msisdn, encode_uplink(report, keys=keys, counter=first_counter + k)))
    return work


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def webhook_load(work, *, port: int, secret: str, args, workdir: Path) -> dict[str, object]:
    """wrk posting the frames round-robin, each with a new gateway message id."""
    frames_file = workdir / "frames.txt"
    frames_file.write_text("".join(f"{msisdn} {frame.hex()}\n" for msisdn, frame in work))
    cmd = [
        "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.seconds}s",
        "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}", "--", secret, str(frames_file),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
    match = re.search(r"^RESULT (\{.*\})$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    result = json.loads(match.group(1))
    seconds = result["duration_us"] / 1e6
    return {
        "requests": result["requests"],
        "non_2xx_or_errors": result["errors"],
        "seconds": round(seconds, 2),
        "messages_per_second": round(result["requests"] / seconds, 1),
        "p50_ms": round(result["p50_us"] / 1000, 1),
        "p99_ms": round(result["p99_us"] / 1000, 1),
        "load": f"wrk {args.wrk_threads} threads, {args.connections} connections",
    }


def post_frame(port: int, secret: str, msisdn: str, frame: bytes) -> str:
    """One frame posted to the webhook as Kannel posts it; the webhook's answer."""
    query = urllib.parse.urlencode(
        {"secret": secret, "from": msisdn, "to": UTILITY_MSISDN, "smsc": "bench",
         "id": str(uuid.uuid4()), "ts": str(int(time.time())), "coding": "1", "udh": ""}
    )  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/sms/kannel/inbound?{query}",
        data=frame,
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def waiting_and_accepted() -> tuple[int, int]:
    from django.db.models import Count, Q

    from smsgateway.models import InboundMessage, InboundStatus

    counts = InboundMessage.objects.aggregate(
        waiting=Count("pk", filter=Q(status=InboundStatus.RECEIVED)),
        accepted=Count("pk", filter=Q(status=InboundStatus.ACCEPTED)),
    )
    return counts["waiting"], counts["accepted"]


def readings_rows() -> int:
    """Rows in the readings table: what customers and billing get, not 24 x messages."""
    from readings.models import Reading

    return Reading.objects.count()


def anchor(count: int, args: argparse.Namespace) -> dict[str, object]:
    """Kannel into the trivial endpoint (`args.anchor`), `count` messages, now
    (bench/bench_kannel.py)."""
    from bench.bench_kannel import run as kannel_rate

    alone = kannel_rate(
        argparse.Namespace(
            count=count, timeout=120.0, max_pending_requests=512, log_level=2,
            store="file", incoming_queue_limit=-1, endpoint_workers=1, endpoint=args.anchor,
            kannel_cpus=args.kannel_cpus,
        )
    )  # fmt: skip
    return {
        "messages": count,
        "cpu_seconds": alone["cpu_seconds"],
        "messages_per_second": alone["messages_per_second"],
        "endpoint": alone["settings"]["endpoint"],
    }


def stored_since(first_id: int) -> int:
    from smsgateway.models import InboundMessage

    return InboundMessage.objects.filter(pk__gt=first_id).count()


def all_stored(first_id: int, count: int) -> bool:
    """Whether `count` messages are stored after `first_id`. The highest id (one index
    look-up) says when that may be so; the rows are then counted."""
    from django.db import connection

    from smsgateway.models import InboundMessage

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(id) FROM {InboundMessage._meta.db_table}")
        last = cursor.fetchone()[0] or 0
    return last - first_id >= count and stored_since(first_id) >= count


def accepted_since(first_id: int) -> int:
    from smsgateway.models import InboundMessage, InboundStatus

    return InboundMessage.objects.filter(pk__gt=first_id, status=InboundStatus.ACCEPTED).count()


def still_waiting() -> bool:
    from smsgateway.models import InboundMessage, InboundStatus

    return InboundMessage.objects.filter(status=InboundStatus.RECEIVED).exists()


# The driver polls the database for progress: often enough to time a step of seconds within
# a few per cent, rarely enough that its queries do not compete with what it measures. Until
# every message is stored it polls every 20 ms (the anchor's count, a file's size, every 5 ms),
# with a query that costs one index look-up.
POLL_SECONDS = 0.1
STORED_POLL_SECONDS = 0.02


def processing_run(count: int, *, args, timeout: float = 600) -> dict[str, object]:
    """Drain the `count` messages waiting (stored by the webhook) with the sms workers."""
    from utility.celery import app

    _, accepted_before = waiting_and_accepted()
    rows_before = readings_rows()
    cpu_before = cpu.snapshot(DB_NAME)
    start = time.monotonic()
    for _ in range(args.worker_concurrency):
        app.send_task("smsgateway.process_inbound", queue="sms")
    while time.monotonic() - start < timeout and still_waiting():
        time.sleep(POLL_SECONDS)
    elapsed = time.monotonic() - start
    cpu_used = cpu.used_since(cpu_before, cpu.snapshot(DB_NAME))
    done = waiting_and_accepted()[1] - accepted_before
    rows = readings_rows() - rows_before
    return {
        "cpu_seconds": cpu_used,
        "messages": count,
        "accepted": done,
        "readings_rows": rows,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(done / elapsed, 1),
        "readings_per_second": round(rows / elapsed, 1),
        "workers": f"celery prefork, {args.worker_concurrency} processes",
    }


def through_kannel(
    work,
    *,
    port: int,
    secret: str,
    timeout: float,
    until_accepted: bool,
    kannel_cpus: str | None = None,
) -> dict[str, object]:
    """Frames injected at the fake SMSC. Until every one is stored (Kannel's delivery into
    our webhook) and, with `until_accepted`, until every one is accepted by the workers."""
    from e2e.harness.kannel import KannelGateway
    from e2e.harness.smsc import FakeSmscClient, format_mo_line
    from smsgateway.models import InboundMessage, InboundStatus

    first_id = InboundMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    rows_before = readings_rows()
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
        if kannel_cpus:  # Kannel on its cores, the service's database connection off them
            for pid in gateway.pids.values():
                cpu.pin(pid, cpu.parse_cpus(kannel_cpus))
            cpu.pin_backends(INGEST_APPLICATION_NAME, cpu.other_cpus(kannel_cpus))
        lines = [format_mo_line(msisdn, UTILITY_MSISDN, frame) for msisdn, frame in work]
        cpu_before = cpu.snapshot(DB_NAME)
        start = time.monotonic()
        for i in range(0, len(lines), 500):
            smsc.send_many(lines[i : i + 500])
        delivered_after = None
        while time.monotonic() - start < timeout:
            if delivered_after is None:
                if all_stored(first_id, len(work)):
                    delivered_after = time.monotonic() - start
                    if not until_accepted:
                        break
                else:
                    time.sleep(STORED_POLL_SECONDS)
                    continue
            if not still_waiting():  # every one stored is processed: one index look-up
                break
            time.sleep(POLL_SECONDS)
        elapsed = time.monotonic() - start
        delivered_after = delivered_after or elapsed
        cpu_used = cpu.used_since(cpu_before, cpu.snapshot(DB_NAME))
        done = accepted_since(first_id) if until_accepted else 0
    delivered = {
        "cpu_seconds": cpu_used,
        "messages": len(work),
        "all_stored_after_seconds": round(delivered_after, 2),
        "delivered_per_second": round(len(work) / delivered_after, 1),
    }
    if not until_accepted:
        return delivered
    delays = [
        (processed - received).total_seconds()
        for received, processed in InboundMessage.objects.filter(
            pk__gt=first_id, status=InboundStatus.ACCEPTED
        ).values_list("received_at", "processed_at")
    ]
    rows = readings_rows() - rows_before
    return {
        **delivered,
        "accepted": done,
        "readings_rows": rows,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(done / elapsed, 1),
        "readings_per_second": round(rows / elapsed, 1),
        "stored_to_accepted_p50_ms": round(1000 * statistics.median(delays), 1),
        "stored_to_accepted_p99_ms": round(1000 * percentile(delays, 0.99), 1),
    }


def kannel_pairs(work, pairs: int, *, port: int, secret: str, redis_url: str, args) -> dict:
    """Kannel into the anchor, then into the webhook, `pairs` times in turn, each time with
    `work`; each webhook rate divided by the anchor's just before it, and the median of those
    ratios. The inbound table and the broker are emptied before each pair."""
    import redis
    from django.db import connection

    if args.kannel_cpus:  # the service opens its database connection now, to be pinned
        msisdn, frame = work[0]
        post_frame(port, secret, msisdn, frame)
        if args.web_workers > 1:
            print(
                "only the ingest worker that took the first frame has its database backend"
                " pinned; the others' go where the kernel puts them",
                file=sys.stderr,
            )
    runs = []
    for i in range(pairs):
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE smsgateway_inboundmessage CASCADE")
        redis.Redis.from_url(redis_url).flushdb()
        print(f"pair {i + 1}/{pairs}: anchor, then Kannel into the webhook…", file=sys.stderr)
        alone = anchor(len(work), args)
        into = through_kannel(
            work, port=port, secret=secret, timeout=600, until_accepted=False,
            kannel_cpus=args.kannel_cpus,
        )  # fmt: skip
        ratio = round(into["delivered_per_second"] / alone["messages_per_second"], 2)
        runs.append({"anchor": alone, "kannel_into_webhook": into, "ratio": ratio})
    ratios = [run["ratio"] for run in runs]
    return {"runs": runs, "ratios": ratios, "median_ratio": statistics.median(ratios)}


@contextlib.contextmanager
def profiled(args, step: str, pids: dict[str, int]):
    """py-spy recording each process tree in `pids` (with its children) while the step runs."""
    if not args.py_spy:
        yield
        return
    out = Path(args.py_spy)
    out.mkdir(parents=True, exist_ok=True)
    py_spy = (
        os.environ.get("PY_SPY")
        or shutil.which("py-spy")
        or shutil.which("py-spy", path=str(Path(sys.executable).parent))  # the venv's
        or "py-spy"
    )
    spies = []
    for name, pid in pids.items():
        cmd = [
            py_spy, "record", "--subprocesses", "--nonblocking", "--rate", str(args.py_spy_rate),
            "-f", "raw", "-o", str(out / f"{step}-{name}.folded"), "--pid", str(pid),
        ]  # fmt: skip
        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=6, help="report frames per meter and run")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="ingest service workers (default: as deploy/gunicorn_ingest.conf.py, half the cores)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=2, help="sms worker processes")
    parser.add_argument("--seconds", type=int, default=10, help="webhook load duration")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--skip-kannel", action="store_true")
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="profile the ingest service and the sms workers with py-spy during Kannel into the"
        " webhook, processing and"
        " all at once (collapsed stacks in DIR; py-spy on the PATH or in $PY_SPY)",
    )
    parser.add_argument("--py-spy-rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument(
        "--kannel-pairs",
        type=int,
        metavar="N",
        help="only Kannel into the anchor and into the webhook, N times in turn (no wrk, workers"
        " or all at once): the ratio of each pair and their median",
    )
    parser.add_argument(
        "--anchor",
        choices=("nginx", "uvicorn"),
        default="nginx",
        help="the trivial endpoint Kannel delivers to for the anchor (nginx: the faster)",
    )
    parser.add_argument(
        "--kannel-cpus",
        metavar="LIST",
        help="keep Kannel on these CPUs (taskset's form, e.g. 0); the anchor's endpoint, the"
        " ingest service, its PostgreSQL backend and this driver on the others (the workers and"
        " their backends go where the kernel puts them)",
    )
    args = parser.parse_args()

    from e2e.harness.kannel import free_port, kannel_installed
    from e2e.harness.portal import INGEST, INGEST_WORKER, PortalProcess, WorkerProcess

    if shutil.which("wrk") is None:
        print("wrk is needed for the webhook load: apt-get install wrk", file=sys.stderr)
        return 2
    use_kannel = not args.skip_kannel and kannel_installed()
    if args.kannel_pairs and not use_kannel:
        print("--kannel-pairs needs Kannel: apt-get install kannel kannel-extras", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = ingest_environment(DB_NAME, meters=args.meters, outbox=str(workdir / "outbox.jsonl"))
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "utility.settings"
    recreate_database(DB_NAME)
    import django

    django.setup()
    from django.db import connection

    print(f"provisioning {args.meters} meters…", file=sys.stderr)
    fleet = provision(args.meters)
    # In the order a fleet sends them: the backlog's days, then those sent all at once (the
    # webhook's are never processed). Each report follows its meter's last, as in service.
    frames, now_hour = args.frames, int(time.time()) // 3600
    webhook_work = frames_for(fleet, frames, days_back=3 * frames, now_hour=now_hour)
    backlog_work = frames_for(
        fleet, frames, first_counter=frames + 1, days_back=2 * frames, now_hour=now_hour
    )
    kannel_work = frames_for(
        fleet, frames, first_counter=2 * frames + 1, days_back=frames, now_hour=now_hour
    )
    connection.close()

    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    port = free_port()
    secret = env["SMS_GATEWAY_SECRET"]
    # As deployed: the ingest service holds no private KEK; the sms workers do.
    ingest_env = {k: v for k, v in os.environ.items() if k != "DEVICE_KEK_PRIVATE_KEYS"}
    ingest_env["DJANGO_SETTINGS_MODULE"] = "utility.settings_ingest"
    ingest_env["PGAPPNAME"] = INGEST_APPLICATION_NAME  # its backends, to be found
    ingest = PortalProcess(
        ingest_env,
        port,
        workdir / "gunicorn.log",
        workers=args.web_workers,
        app=INGEST,
        worker_class=INGEST_WORKER,
    )
    if args.kannel_cpus:  # this driver (and the fake SMSC) off Kannel's cores too
        cpu.pin(ingest.proc.pid, cpu.other_cpus(args.kannel_cpus))
        os.sched_setaffinity(0, cpu.other_cpus(args.kannel_cpus))
    result: dict[str, object] = {
        "command": shlex.join([".venv/bin/python", "bench/bench_ingest.py", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} cpus, PostgreSQL and Redis on localhost",
        "ingest_service": f"gunicorn, {args.web_workers} uvicorn workers (utility.ingest_asgi)",
        "anchor": args.anchor,
        "kannel_cpus": args.kannel_cpus or "any",
    }
    if args.kannel_pairs:
        try:
            result["kannel_pairs"] = kannel_pairs(
                backlog_work, args.kannel_pairs, port=port, secret=secret,
                redis_url=env["REDIS_URL"], args=args,
            )  # fmt: skip
        finally:
            ingest.stop()
            connection.close()
        result["logs"] = str(workdir)
        print(json.dumps(result, indent=2))
        return 0
    workers = None
    try:
        print(f"webhook: wrk for {args.seconds} s…", file=sys.stderr)
        result["webhook"] = webhook_load(
            webhook_work, port=port, secret=secret, args=args, workdir=workdir
        )
        with connection.cursor() as cursor:  # the webhook run's rows are not processed
            cursor.execute("TRUNCATE smsgateway_inboundmessage CASCADE")
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # nor the drains it queued
        if use_kannel:
            print(f"anchor: {len(backlog_work)} frames…", file=sys.stderr)
            result["anchor_before_kannel_into_webhook"] = anchor(len(backlog_work), args)
            print(f"Kannel into the webhook: {len(backlog_work)} frames…", file=sys.stderr)
            with profiled(args, "kannel-into-webhook", {"ingest": ingest.proc.pid}):
                result["kannel_into_webhook"] = through_kannel(
                    backlog_work, port=port, secret=secret, timeout=600, until_accepted=False,
                    kannel_cpus=args.kannel_cpus,
                )  # fmt: skip
        else:  # the same backlog, stored directly
            from django.utils import timezone

            from smsgateway.adapters import InboundSms
            from smsgateway.rawstore import store_raw_many

            store_raw_many(
                [
                    (InboundSms("kannel", f"p-{i}", m, UTILITY_MSISDN, f, b"", 1, "b", None),
                     timezone.now())
                    for i, (m, f) in enumerate(backlog_work)
                ]
            )  # fmt: skip
        time.sleep(1)  # the webhook's last drain timer has fired by now...
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # ...and no worker takes its drains
        workers = WorkerProcess(
            dict(os.environ),
            workdir / "celery.log",
            queues="sms",
            pool="prefork",
            concurrency=args.worker_concurrency,
        )
        time.sleep(5)  # the workers connect to the broker
        print(f"processing: the {len(backlog_work)} stored frames…", file=sys.stderr)
        with profiled(args, "processing", {"workers": workers.proc.pid}):
            result["processing"] = processing_run(len(backlog_work), args=args)
        if use_kannel:
            print(f"anchor: {len(kannel_work)} frames…", file=sys.stderr)
            result["anchor_before_all_at_once"] = anchor(len(kannel_work), args)
            print(f"through Kannel, all at once: {len(kannel_work)} frames…", file=sys.stderr)
            pids = {"workers": workers.proc.pid, "ingest": ingest.proc.pid}
            with profiled(args, "all-at-once", pids):
                result["through_kannel"] = through_kannel(
                    kannel_work, port=port, secret=secret, timeout=600, until_accepted=True,
                    kannel_cpus=args.kannel_cpus,
                )  # fmt: skip
    finally:
        ingest.stop()
        if workers is not None:
            workers.stop()
        connection.close()
    if use_kannel:
        first = result["anchor_before_kannel_into_webhook"]["messages_per_second"]
        second = result["anchor_before_all_at_once"]["messages_per_second"]
        result["ratio_to_anchor"] = {
            "webhook (wrk) / first anchor": round(
                result["webhook"]["messages_per_second"] / first, 2
            ),
            "Kannel into the webhook / first anchor": round(
                result["kannel_into_webhook"]["delivered_per_second"] / first, 2
            ),
            "processing / first anchor": round(
                result["processing"]["messages_per_second"] / first, 2
            ),
            "all at once, accepted / second anchor": round(
                result["through_kannel"]["messages_per_second"] / second, 2
            ),
        }
    result["logs"] = str(workdir)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
