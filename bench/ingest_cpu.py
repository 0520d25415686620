"""CPU per message of the ingest service, beside the anchor endpoint's, without Kannel.

On two cores Kannel takes more than one; what the webhook and its PostgreSQL backend spend per
message is what competes with it. This drives, in turn, the ingest service as deployed
(gunicorn, uvicorn workers, utility.ingest_asgi, settings_ingest) and the anchor endpoint
(bench/trivial_endpoint.py on uvicorn) with wrk posting real report frames the way Kannel's
post-url does (bench/wrk_inbound.lua), and reports CPU microseconds per message for the
service's processes and for this database's PostgreSQL backends (bench/cpu.py). Every run
is alternated `--rounds` times, so a busy machine shows as spread rather than as a shift.

    .venv/bin/python bench/ingest_cpu.py                          # defaults below
    .venv/bin/python bench/ingest_cpu.py --web-workers 1 --connections 64 --rounds 3
    .venv/bin/python bench/ingest_cpu.py --profile var/prof     # cProfile of each worker

`--profile DIR` runs each ingest worker under cProfile (one file per worker process, written
when it stops); the CPU figures of that run include the profiler's own cost.

Needs PostgreSQL and Redis on localhost (a scratch database `bench_ingest_cpu` is recreated
and dropped) and wrk. Loopback only; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from bench.scratch import drop_database, ingest_environment, recreate_database  # noqa: E402

DB_NAME = "bench_ingest_cpu"
WRK_SCRIPT = ROOT / "bench" / "wrk_inbound.lua"
PROFILED_WORKER = "bench.profiled_ingest_worker.ProfiledIngestWorker"


def wrk(port: int, secret: str, frames_file: Path, args: argparse.Namespace) -> dict:
    cmd = [
        "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.seconds}s",
        "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}", "--", secret, str(frames_file),
    ]  # fmt: skip
    if args.pace_ms:
        cmd.append(str(args.pace_ms))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
    match = re.search(r"^RESULT (\{.*\})$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(match.group(1))


def measured(
    component: str, port: int, secret: str, frames_file: Path, args: argparse.Namespace
) -> dict[str, object]:
    """One wrk run; CPU per message of `component` and of this database's backends, and the
    mean number of messages per transaction (the group commit's groups)."""
    commits = committed_transactions()
    before = cpu.snapshot(DB_NAME)
    result = wrk(port, secret, frames_file, args)
    used = cpu.used_since(before, cpu.snapshot(DB_NAME))
    commits = committed_transactions() - commits
    requests = result["requests"]
    service = used.get(component, 0.0)
    database = used.get("postgresql (this database)", 0.0)
    return {
        "requests": requests,
        "errors": result["errors"],
        "messages_per_second": round(requests / (result["duration_us"] / 1e6)),
        "service_us": round(1e6 * service / requests, 1),
        "postgresql_us": round(1e6 * database / requests, 1),
        "total_us": round(1e6 * (service + database) / requests, 1),
        "p99_ms": round(result["p99_us"] / 1000, 1),
        "messages_per_transaction": round(requests / commits, 1) if commits > 0 else None,
        "load_average": os.getloadavg()[0],
    }


def committed_transactions() -> int:
    """Transactions committed in the scratch database so far (PostgreSQL's statistics, which
    lag by up to half a second: a run of seconds is counted within a few per cent)."""
    import psycopg

    from bench.scratch import ADMIN_DSN

    time.sleep(0.6)  # the backends have reported what they did
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [DB_NAME]
        ).fetchone()
    return row[0]


def frames_file(workdir: Path, meters: int, frames: int) -> Path:
    from bench.bench_ingest import frames_for, provision

    work = frames_for(provision(meters), frames)
    path = workdir / "frames.txt"
    path.write_text("".join(f"{msisdn} {frame.hex()}\n" for msisdn, frame in work))
    return path


def summary(runs: list[dict]) -> dict[str, object]:
    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 1)

    return {
        "median_total_us": median("total_us"),
        "median_service_us": median("service_us"),
        "median_postgresql_us": median("postgresql_us"),
        "median_messages_per_second": median("messages_per_second"),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--web-workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="ingest service workers (default: as deployed, half the cores)",
    )
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--pace-ms",
        type=int,
        default=0,
        help="each connection waits this long between requests (0: as fast as answered);"
        " a steady rate below saturation, as Kannel offers it",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternations ingest/anchor")
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--frames", type=int, default=4, help="report frames per meter")
    parser.add_argument("--skip-anchor", action="store_true")
    parser.add_argument("--profile", metavar="DIR", help="cProfile each ingest worker into DIR")
    args = parser.parse_args()

    from bench.bench_kannel import start_endpoint
    from bench.bench_kannel import stop as stop_endpoint
    from e2e.harness.kannel import free_port
    from e2e.harness.portal import INGEST, INGEST_WORKER, PortalProcess

    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-cpu-"))
    env = ingest_environment(
        DB_NAME,
        meters=args.meters,
        outbox=str(workdir / "outbox.jsonl"),
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
    )
    os.environ.update(env)
    recreate_database(DB_NAME)
    import django

    django.setup()
    import redis
    from django.db import connection

    frames = frames_file(workdir, args.meters, args.frames)
    connection.close()
    ingest_env = {k: v for k, v in os.environ.items() if k != "DEVICE_KEK_PRIVATE_KEYS"}
    ingest_env["DJANGO_SETTINGS_MODULE"] = "utility.settings_ingest"
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        ingest_env["INGEST_PROFILE_DIR"] = str(Path(args.profile).resolve())
    secret = env["SMS_GATEWAY_SECRET"]
    ingest_port, anchor_port = free_port(), free_port()
    ingest = PortalProcess(
        ingest_env,
        ingest_port,
        workdir / "gunicorn.log",
        workers=args.web_workers,
        app=INGEST,
        worker_class=PROFILED_WORKER if args.profile else INGEST_WORKER,
    )
    anchor = None
    if not args.skip_anchor:
        anchor = start_endpoint(anchor_port, workdir / "count", workdir / "anchor.log")
    runs: dict[str, list[dict]] = {"ingest service": [], "anchor endpoint": []}
    try:
        short = argparse.Namespace(**{**vars(args), "seconds": 2})
        wrk(ingest_port, secret, frames, short)  # warm: connections, caches, first group
        for _ in range(args.rounds):
            print("ingest service…", file=sys.stderr)
            runs["ingest service"].append(
                measured("ingest service", ingest_port, secret, frames, args)
            )
            if anchor is not None:
                print("anchor endpoint…", file=sys.stderr)
                runs["anchor endpoint"].append(
                    measured("anchor endpoint", anchor_port, secret, frames, args)
                )
    finally:
        ingest.stop()
        if anchor is not None:
            stop_endpoint(anchor)
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # the drains nobody will take
        drop_database(DB_NAME)
    result = {
        "command": shlex.join([".venv/bin/python", "bench/ingest_cpu.py", *sys.argv[1:]]),
        "load": f"wrk {args.wrk_threads} threads, {args.connections} connections, "
        f"{args.pace_ms} ms pause, {args.seconds} s; {args.web_workers} ingest worker(s)",
        **{name: summary(r) for name, r in runs.items() if r},
        "logs": str(workdir),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
