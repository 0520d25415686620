"""Manufacturer-manifest import: time to validate and import 1,000 and 10,000 meters with their
SIMs on PostgreSQL, through the same code path as `manage.py import_meters`.

    .venv/bin/python bench/bench_import.py            # 1,000 and 10,000 rows
    .venv/bin/python bench/bench_import.py --rows 1000 10000 50000

Recreates a scratch database `bench_import` on the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import django_environment, recreate_database  # noqa: E402

DB_NAME = "bench_import"


def manifest(rows: int, offset: int) -> bytes:
    from testing.devices import luhn_iccid

    lines = ["meter_number,msisdn,iccid,manufacturer,model,batch"]
    for i in range(offset, offset + rows):
        lines.append(
            f"IMPORT{i:019d},+4478{i:08d},{luhn_iccid(f'8944500402{i:08d}')},Acme,M1,B{i // 1000}"
        )
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    recreate_database(DB_NAME)
    os.environ.update(django_environment(DB_NAME, SMS_INGEST_ENABLED="false"))
    import django

    django.setup()
    from django.core.management import call_command

    from devices.importer import import_manifest

    call_command("migrate", verbosity=0)
    results = []
    offset = 0
    for rows in args.rows:
        data = manifest(rows, offset)
        offset += rows
        started = time.perf_counter()
        report = import_manifest(
            data,
            by="bench",
            dry_run=False,
            progress=lambda n: print(f"\r  {n} rows", end="", file=sys.stderr),
        )
        elapsed = time.perf_counter() - started
        print(file=sys.stderr)
        assert report.ok and report.imported == rows, report.file_errors
        results.append(
            {"rows": rows, "seconds": round(elapsed, 2), "rows_per_second": round(rows / elapsed)}
        )
    print(
        json.dumps(
            {
                "command": shlex.join([".venv/bin/python", "bench/bench_import.py", *sys.argv[1:]]),
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
