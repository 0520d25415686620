"""Storing readings: idempotent per meter and hour; a disagreeing value is set aside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
    if not readings:
        return StoreResult(0, 0, 0)
    hours = [hour_to_datetime(h) for h, _ in readings]
    stored = dict(
        Reading.objects.filter(meter_id=meter_id, hour__range=(min(hours), max(hours)))
        .filter(hour__in=hours)
        .values_list("hour", "wh")
    )
    new, duplicates, conflicts = [], 0, []
    for moment, (_, wh) in zip(hours, readings, strict=True):
        if moment not in stored:
            new.append(
                Reading(
                    meter_id=meter_id, hour=moment, wh=wh, source=source, received_at=received_at
                )
            )
            stored[moment] = wh
        elif stored[moment] == wh:
            duplicates += 1
        else:
            conflicts.append(
                ReadingConflict(
                    meter_id=meter_id,
                    hour=moment,
                    stored_wh=stored[moment],
                    received_wh=wh,
                    source=source,
                    received_at=received_at,
                )
            )
    Reading.objects.bulk_create(new, ignore_conflicts=True)
    ReadingConflict.objects.bulk_create(conflicts, ignore_conflicts=True)
    return StoreResult(len(new), duplicates, len(conflicts))
