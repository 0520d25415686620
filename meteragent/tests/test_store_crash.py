"""Crash safety: kill -9 the writer at random instants; nothing reported as committed is lost."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from meteragent.store import Store

KEY_HEX = "11" * 32
REPO_ROOT = Path(__file__).resolve().parents[2]

# The writer resumes after the newest stored hour, stores readings as fast as it can, and
# prints each hour only after record_reading() has returned (i.e. after COMMIT).
WRITER = f"""
import sys
from meteragent.store import Store
s = Store(sys.argv[1], key=bytes.fromhex("{KEY_HEX}"))
last = s.latest_reading()
h = 0 if last is None else last.hour + 1
print("ready", flush=True)
while True:
    s.record_reading(h, h * 7)
    if h % 5 == 0:
        s.add_event("tick", h, h)
    print(h, flush=True)
    h += 1
"""


def run_and_kill(db: Path, rng: random.Random) -> set[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    # Wait for "ready" so the kill lands among writes, then let it run a random while.
    deadline = time.monotonic() + 10
    while b"ready\n" not in buf and time.monotonic() < deadline:
        select.select([fd], [], [], 0.5)
        buf += os.read(fd, 65536)
    time.sleep(rng.uniform(0.0, 0.05))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    buf += proc.stdout.read()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return {int(line) for line in buf.decode().split() if line.isdigit()}


def test_no_committed_reading_lost_across_random_kills(tmp_path):
    db = tmp_path / "meter.db"
    rng = random.Random(20240601)
    committed: set[int] = set()
    for _ in range(50):
        committed |= run_and_kill(db, rng)
    assert len(committed) > 50  # the writer really was interrupted mid-stream many times

    s = Store(db, key=bytes.fromhex(KEY_HEX))
    try:
        stored = {r.hour: r.wh for r in s.readings()}
        assert committed <= set(stored)
        assert all(stored[h] == h * 7 for h in stored)
        # No holes: every process resumed right after the last committed hour.
        assert sorted(stored) == list(range(len(stored)))
        report = s.verify()
        assert report.ok, report
        assert s.integrity_check() == "ok"
    finally:
        s.close()
