"""What a new database connection per task costs: CPU per task in this process and in
PostgreSQL, for a drain of an empty queue (the sms workers' shortest task) on a connection
closed after every task (Celery's default with Django) and on one kept from task to task (ours,
`utility/celery.py`), in turn.

    .venv/bin/python bench/task_connection.py               # 200 tasks each way, 3 rounds
    .venv/bin/python bench/task_connection.py --tasks 500 --rounds 5

Needs PostgreSQL on localhost (a scratch database `bench_task_connection` is recreated and
dropped). PostgreSQL's CPU counts the backends of this database and those that ended
meanwhile (bench/cpu.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from bench.scratch import django_environment, migrated_django  # noqa: E402

DB_NAME = "bench_task_connection"


def per_task(tasks: int, *, new_connection: bool) -> tuple[float, float]:
    """(this process's, PostgreSQL's) CPU milliseconds per task."""
    from django.db import close_old_connections, connection

    from smsgateway.drain import drain

    connection.close()  # no backend from before: its whole life would count as this run's
    before, own = cpu.snapshot(DB_NAME), time.process_time()
    for _ in range(tasks):
        close_old_connections()  # around each task, as the workers do
        drain(limit=500)
        if new_connection:
            connection.close()  # as Celery's fixup does by default
        else:
            close_old_connections()
    own = time.process_time() - own
    used = cpu.used_since(before, cpu.snapshot(DB_NAME))
    database = used.get("postgresql (this database)", 0.0) + used.get(
        "postgresql (backends that ended, any database)", 0.0
    )
    return 1000 * own / tasks, 1000 * database / tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(django_environment(DB_NAME))
    with migrated_django(DB_NAME):
        from django.db import connection

        per_task(5, new_connection=False)  # imports and first connection out of the way
        connection.close()
        for i in range(args.rounds):
            for label, new in (("new connection per task", True), ("connection kept", False)):
                own, database = per_task(args.tasks, new_connection=new)
                print(
                    f"round {i + 1} {label:24} this process {own:5.2f} ms,"
                    f" PostgreSQL {database:5.2f} ms CPU per task"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
