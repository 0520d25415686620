"""Our own processes for end-to-end tests: the portal under gunicorn and a Celery worker, both
on the test database the test process uses."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

from testing.processes import current_database_url

ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "INGEST",
    "INGEST_WORKER",
    "PORTAL",
    "PortalProcess",
    "WorkerProcess",
    "base_env",
    "current_database_url",
    "wait_for",
]


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


PORTAL = "utility.wsgi:application"
INGEST = "utility.ingest_asgi:application"  # the ingest service: the gateway's endpoints
INGEST_WORKER = "utility.ingest_worker.IngestWorker"


class PortalProcess:
    """gunicorn serving one of our applications on a loopback port: the portal (WSGI, sync
    workers) or, with `app=INGEST, worker_class=INGEST_WORKER`, the ingest service (ASGI)."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        log: Path,
        workers: int = 2,
        *,
        app: str = PORTAL,
        worker_class: str = "sync",
    ) -> None:
        self.port, self.log = port, log
        cmd = [
            sys.executable, "-m", "gunicorn", "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            "--worker-class", worker_class, app,
        ]  # fmt: skip
        self._out = open(log, "ab")  # noqa: SIM115 - open for the process's lifetime
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status in (200, 503):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer; see {log}")

    def stop(self) -> None:
        _stop(self.proc)
        self._out.close()


class WorkerProcess:
    """A Celery worker consuming the given queues (`name`: its node name, `name@host`)."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        queues: str = "default,sms,sms_send",
        *,
        pool: str = "threads",
        concurrency: int = 4,
        name: str | None = None,
    ) -> None:
        cmd = [
            sys.executable, "-m", "celery", "-A", "utility", "worker", "-Q", queues,
            f"--pool={pool}", f"--concurrency={concurrency}", "--without-gossip",
            "--without-mingle", "--loglevel=WARNING",
        ]  # fmt: skip
        if name:  # several workers on one host need names of their own to be told apart
            cmd += ["-n", name]
        self._out = open(log, "ab")  # noqa: SIM115 - open for the process's lifetime
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        _stop(self.proc)
        self._out.close()


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` (a database query, a file) until it is truthy; the value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(overrides)
    return env
