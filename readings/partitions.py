"""Monthly range partitions of the readings table.

The table is partitioned by `hour`; a DEFAULT partition catches anything outside the created
months (a very old upload), so no insert ever fails for want of a partition. The beat task
`readings.ensure_partitions` keeps the coming months created; when a month is created whose
rows already sit in the DEFAULT partition, they are moved into it in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection as default_connection
from django.db import transaction

TABLE = "readings_reading"

CREATE_PARTITIONED = f"""
CREATE TABLE {TABLE} (
    meter_id bigint NOT NULL
        REFERENCES devices_meter (id) DEFERRABLE INITIALLY DEFERRED,
    hour timestamptz NOT NULL,
    wh bigint NOT NULL CONSTRAINT reading_wh_gte_0 CHECK (wh >= 0),
    source smallint NOT NULL CHECK (source >= 0),
    received_at timestamptz NOT NULL,
    PRIMARY KEY (meter_id, hour)
) PARTITION BY RANGE (hour);
CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT;
"""


def _month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def partition_month(name: str) -> date | None:
    """The month a partition named by `partition_name` holds; None for any other table."""
    prefix = f"{TABLE}_y"
    if not name.startswith(prefix):
        return None
    year, _, month = name.removeprefix(prefix).partition("m")
    if not (year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
        return None
    return date(int(year), int(month), 1)


def existing_partitions(connection=default_connection) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


def ensure_partitions(
    *,
    today: date | None = None,
    months_back: int = 24,
    months_ahead: int = 3,
    not_before: date | None = None,
    connection=None,
) -> list[str]:
    """Create the monthly partitions from `months_back` before to `months_ahead` after today,
    none for a month before `not_before` (the retention policy dropped those). Returns the names
    created."""
    connection = connection or default_connection
    today = today or datetime.now(UTC).date()
    first = add_months(_month_start(today), -months_back)
    have = existing_partitions(connection)
    created = []
    for offset in range(months_back + months_ahead + 1):
        start = add_months(first, offset)
        name = partition_name(start)
        if name in have or (not_before and start < not_before):
            continue
        end = add_months(start, 1)
        bounds = [f"{start.isoformat()} 00:00+00", f"{end.isoformat()} 00:00+00"]
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            # Rows that landed in DEFAULT for this month move into the new partition.
            cursor.execute(
                f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
            # Identifiers are ours; the bounds are parameters.
            moved = f"DELETE FROM {TABLE}_default WHERE hour >= %s AND hour < %s RETURNING *"  # noqa: S608
            insert = f"WITH moved AS ({moved}) INSERT INTO {name} SELECT * FROM moved"  # noqa: S608
            cursor.execute(insert, bounds)
            cursor.execute(
                f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
                bounds,
            )
        created.append(name)
    return created
