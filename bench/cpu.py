"""CPU time by component of the ingest pipeline, read from /proc (Linux): where the cores went
while a benchmark step ran. PostgreSQL backends are counted only for the benchmark's database
(their process title names it); the machine's other work is what is left of 2 x wall time."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


_ROOT = str(Path(__file__).resolve().parent.parent)


def _component(pid: int, cmdline: str, comm: str, parent: int, database: str | None) -> str | None:
    if pid == os.getpid():
        return "benchmark driver (and the fake SMSC)"
    if comm in ("bearerbox", "smsbox") and parent == os.getpid():  # this benchmark's gateway
        return "kannel"
    ours = _ROOT in cmdline  # this checkout's processes, not another's on the same machine
    if ours and "trivial_endpoint" in cmdline:
        return "anchor endpoint"
    if ours and "utility.ingest_asgi" in cmdline:
        return "ingest service"
    if ours and "celery" in cmdline and " worker" in cmdline:
        return "sms workers"
    if cmdline.startswith("postgres: ") and database and f" {database} " in cmdline:
        return "postgresql (this database)"
    if cmdline.startswith("postgres: ") and ("walwriter" in cmdline or "checkpointer" in cmdline):
        return "postgresql (shared background)"
    if comm == "redis-server":
        return "redis (shared)"
    return None


def snapshot(database: str | None = None) -> dict[str, float]:
    """CPU seconds (user + system) used so far, per component, by the processes alive now."""
    used: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        component = _component(int(proc.name), cmdline.strip(), comm, int(fields[1]), database)
        if component is None:
            continue
        used[component] = used.get(component, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return used


def used_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per component between two snapshots (a process that started in between
    counts from zero; one that ended in between is not counted, so take `after` before
    stopping anything)."""
    return {
        name: round(after[name] - before.get(name, 0.0), 2)
        for name in sorted(after)
        if after[name] - before.get(name, 0.0) > 0.005
    }
