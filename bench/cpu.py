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
    if (ours and "trivial_endpoint" in cmdline) or (comm == "nginx" and "bench-kannel" in cmdline):
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
        if comm == "postgres" and not cmdline.startswith("postgres: "):
            # The postmaster: what its backends used before they ended (a worker's connection
            # closed after each task, say) is added to its children's times when reaped.
            name = "postgresql (backends that ended, any database)"
            used[name] = used.get(name, 0.0) + (int(fields[13]) + int(fields[14])) / _TICKS
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


def parse_cpus(text: str) -> set[int]:
    """The CPU numbers of a list in taskset's form ("0", "0,2-3")."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def other_cpus(cpus: str) -> set[int]:
    """The CPUs this process may use, less `cpus`."""
    rest = os.sched_getaffinity(0) - parse_cpus(cpus)
    if not rest:
        raise ValueError(f"no CPU left besides {cpus}")
    return rest


def pin(pid: int, cpus: set[int]) -> None:
    """Keep a process, every thread it has and every process under it on `cpus` (threads and
    children started later inherit it from the one that starts them)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(proc.name))
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                os.sched_setaffinity(int(task.name), cpus)
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile
        todo.extend(children.get(current, []))


def pin_backends(application_name: str, cpus: set[int]) -> None:
    """`pin` the PostgreSQL backends of the connections named `application_name` (libpq's
    PGAPPNAME), as they are now."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name]
        )
        for (pid,) in cursor.fetchall():
            pin(pid, cpus)
