"""Storing readings: idempotent per meter and hour; a disagreeing value is set aside."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from utility.pg import array_cursor, bigint_array

from . import usage_cache
from .models import Reading, ReadingConflict, Source

SECONDS_PER_HOUR = 3600


def hour_to_datetime(unix_hour: int) -> datetime:
    return datetime.fromtimestamp(unix_hour * SECONDS_PER_HOUR, tz=UTC)


def datetime_to_hour(moment: datetime) -> int:
    return int(moment.timestamp()) // SECONDS_PER_HOUR


@dataclass(frozen=True)
class StoreResult:
    inserted: int
    duplicates: int
    conflicts: int


def store_readings(
    meter_id: int,
    readings: Sequence[tuple[int, int]],
    *,
    received_at: datetime,
    source: int = Source.SMS,
) -> StoreResult:
    """Store (unix hour, Wh) pairs for one meter. Call inside the transaction that holds the
    meter's lock, so no other writer races between the read and the insert."""
    return store_many_readings(
        [(meter_id, hour, wh) for hour, wh in readings], received_at=received_at, source=source
    )


def store_many_readings(
    readings: Sequence[tuple[int, int, int]],
    *,
    received_at: datetime,
    source: int = Source.SMS,
    stored_through: Mapping[int, int | None] | None = None,
) -> StoreResult:
    """Store (meter id, unix hour, Wh) rows of any number of meters, set-based: an hour
    already stored with the same value is a duplicate (no-op), with another value a conflict
    kept aside and flagged (never overwritten). The first of two rows for the same meter and
    hour within `readings` counts as stored before the second. Call inside the transaction
    that holds the meters' locks.

    `stored_through` (meter id → unix hour, as ingest's high-water mark) says up to which hour
    a meter's readings are known to be stored: the rows after it are most likely new, and are
    first copied in without any check for an existing row, which costs PostgreSQL about a
    third of the checked insert. Should one exist after all (or come twice), nothing of that
    attempt stays and every row takes the checked path, so the result is the same whatever
    the hint says."""
    if stored_through is not None:
        fresh, rest = _split_at_marks(readings, stored_through)
        if fresh and _copy_new(fresh, received_at=received_at, source=source):
            result, new_meters = _store_checked(rest, received_at=received_at, source=source)
            readings_stored(new_meters | {meter_id for meter_id, _, _ in fresh})
            return StoreResult(result.inserted + len(fresh), result.duplicates, result.conflicts)
    result, new_meters = _store_checked(readings, received_at=received_at, source=source)
    readings_stored(new_meters)
    return result


def _split_at_marks(
    readings: Sequence[tuple[int, int, int]], stored_through: Mapping[int, int | None]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """The rows after their meter's mark, and the others (a meter without a mark has none
    after it; one whose mark is None has all)."""
    marks = {meter_id: -1 if hour is None else hour for meter_id, hour in stored_through.items()}
    fresh: list[tuple[int, int, int]] = []
    rest: list[tuple[int, int, int]] = []
    for row in readings:
        mark = marks.get(row[0])
        (fresh if mark is not None and row[1] > mark else rest).append(row)
    return fresh, rest


def _copy_new(rows: Sequence[tuple[int, int, int]], *, received_at: datetime, source: int) -> bool:
    """Copy rows believed new into the table (binary COPY, in a savepoint); False, and
    nothing stored, if any of them was stored already or comes twice, or the database refused
    one."""
    moments: dict[int, datetime] = {}  # a batch holds a few dozen distinct hours
    try:
        with (
            transaction.atomic(),
            array_cursor() as cursor,
            cursor.copy(_COPY_READINGS) as copy,
        ):
            copy.set_types(_COPY_TYPES)
            for meter_id, hour, wh in rows:
                moment = moments.get(hour)
                if moment is None:
                    moment = moments[hour] = hour_to_datetime(hour)
                copy.write_row((meter_id, moment, wh, source, received_at))
    except IntegrityError:
        return False  # the checked path sorts out which rows exist (or raises the refusal)
    return True


_COPY_READINGS = (
    f"COPY {Reading._meta.db_table} (meter_id, hour, wh, source, received_at)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["int8", "timestamptz", "int8", "int2", "timestamptz"]


def _store_checked(
    readings: Sequence[tuple[int, int, int]], *, received_at: datetime, source: int
) -> tuple[StoreResult, set[int]]:
    """Store rows, each checked against what is stored; the result, and the meters with rows
    newly stored."""
    incoming: dict[tuple[int, int], int] = {}
    repeats: list[tuple[int, int, int]] = []  # later rows for an hour already in `incoming`
    for meter_id, hour, wh in readings:
        if (meter_id, hour) in incoming:
            repeats.append((meter_id, hour, wh))
        else:
            incoming[(meter_id, hour)] = wh
    if not incoming:
        return StoreResult(0, 0, 0), set()
    existing = _insert_new(incoming, received_at=received_at, source=source)
    # (meter, hour, value already stored, value received) for every row not newly inserted
    compared = [(*key, existing[key], wh) for key, wh in incoming.items() if key in existing]
    compared += [(m, h, existing.get((m, h), incoming[(m, h)]), wh) for m, h, wh in repeats]
    duplicates = sum(stored == wh for _, _, stored, wh in compared)
    conflicts = [row for row in compared if row[2] != row[3]]
    ReadingConflict.objects.bulk_create(
        [
            ReadingConflict(
                meter_id=meter_id,
                hour=hour_to_datetime(hour),
                stored_wh=stored,
                received_wh=wh,
                source=source,
                received_at=received_at,
            )
            for meter_id, hour, stored, wh in conflicts
        ],
        ignore_conflicts=True,
    )
    new_meters = {meter_id for meter_id, hour in incoming if (meter_id, hour) not in existing}
    inserted = len(incoming) - sum(1 for key in incoming if key in existing)
    return StoreResult(inserted, duplicates, len(conflicts)), new_meters


def readings_stored(meter_ids: Collection[int]) -> None:
    """New readings for these meters are in the current transaction: the portal's and API's
    cached figures for them are not used again. Every writer of readings calls this, in the
    transaction that stores them (store_many_readings does)."""
    usage_cache.settle_meters(meter_ids)


def _insert_new(
    incoming: dict[tuple[int, int], int], *, received_at: datetime, source: int
) -> dict[tuple[int, int], int]:
    """Insert the rows not stored yet; return the values already stored for the others."""
    table = Reading._meta.db_table
    meters, hours, values = [], [], []
    for (meter_id, hour), wh in incoming.items():
        meters.append(meter_id)
        hours.append(hour)
        values.append(wh)
    # One statement for the whole set. The CTE's insert is invisible to the outer SELECT (one
    # snapshot), so the join finds exactly the rows that were there before.
    sql = f"""
        WITH incoming (meter_id, hour, wh) AS (
            SELECT m, to_timestamp(h * {SECONDS_PER_HOUR}), w
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(m, h, w)
        ), inserted AS (
            INSERT INTO {table} (meter_id, hour, wh, source, received_at)
            SELECT meter_id, hour, wh, %s, %s FROM incoming
            ON CONFLICT DO NOTHING
        )
        SELECT r.meter_id, extract(epoch FROM r.hour)::bigint / {SECONDS_PER_HOUR}, r.wh
        FROM incoming i JOIN {table} r ON r.meter_id = i.meter_id AND r.hour = i.hour
    """  # noqa: S608 - the table name comes from the model
    with array_cursor() as cursor:
        cursor.execute(
            sql,
            [bigint_array(meters), bigint_array(hours), bigint_array(values), source, received_at],
        )
        return {(meter_id, hour): wh for meter_id, hour, wh in cursor.fetchall()}
