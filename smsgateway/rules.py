"""The ingest rules, in one place: both the set-based batch path (`batch`) and the one-message
path (`ingest`) decide with these functions which messages a meter may send, which reports
are plausible, how the acknowledged mark (the high-water mark) moves, and which reports are
answered with an ack and how that ack is queued. Each takes a set of meters or messages, so the
batch path calls it once per batch and the one-message path once per message."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from devices.models import Meter, MeterKey, MeterStatus
from meteragent.protocol import ReplayWindow, Report
from readings.services import datetime_to_hour
from utility.pg import array_cursor

from . import acks
from .models import InboundMessage, InboundStatus, OutboundKind, RejectReason
from .outbox import queue

CODING_8BIT = 1

# Meters in these states send nothing we accept: the reason each message of theirs is refused.
REFUSED_STATUSES: dict[str, str] = {
    MeterStatus.REGISTERED: RejectReason.METER_NOT_PROVISIONED,
    MeterStatus.SUSPENDED: RejectReason.METER_SUSPENDED,
    MeterStatus.DECOMMISSIONED: RejectReason.METER_DECOMMISSIONED,
}


def is_binary(coding: int | None) -> bool:
    """Frames travel as 8-bit binary SMS (or with no coding given)."""
    return coding in (None, CODING_8BIT)


def refusal(status: str) -> str | None:
    """Why a meter in `status` may not report (a RejectReason), or None if it may."""
    return REFUSED_STATUSES.get(status)


def latest_plausible_hour(now: datetime) -> int:
    """A report with a reading after this hour is from the future: rejected as implausible."""
    return datetime_to_hour(now) + 1


def from_the_future(report: Report, *, now: datetime) -> bool:
    latest_allowed = latest_plausible_hour(now)
    return any(r.hour > latest_allowed for r in report.readings)


def wants_ack(report: Report) -> bool:
    """The last frame of a report batch is answered; the frames before it are not."""
    return report.remaining == 0


def hour_range(report: Report) -> tuple[int | None, int | None]:
    """The hours a report covers (the meter sends everything it has in that range)."""
    if not report.readings:
        return None, None
    return report.readings[0].hour, report.readings[-1].hour


def window_of(key: MeterKey) -> ReplayWindow:
    """A key's uplink replay window as stored in its row."""
    return ReplayWindow(key.uplink_highest, bitmap_from_db(key.uplink_bitmap))


def bitmap_to_db(bitmap: int) -> int:
    """A 64-bit replay bitmap as PostgreSQL's signed bigint."""
    return bitmap - (1 << 64) if bitmap >= 1 << 63 else bitmap


def bitmap_from_db(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def high_water_marks(marks: Mapping[int, int | None]) -> dict[int, int | None]:
    """Each meter's contiguous high-water mark, extended from its stored mark (`marks`:
    meter id → `acked_through_hour`) over the hour ranges of its accepted reports, in one
    query. Call under the meters' key locks, in the transaction that marked the reports
    accepted; the caller saves the result."""
    return extend_marks(marks, accepted_ranges(marks))


# Each meter's reports looked up on its own (the subquery's ORDER BY keeps the planner from
# merging it into a join): otherwise, with statistics that lag behind the table (a young table,
# a backlog just drained), the planner may read every accepted report into a hash per batch.
ACCEPTED_RANGES = f"""
    SELECT v.meter_id, r.first_hour, r.last_hour
    FROM unnest(%b::bigint[], %b::bigint[]) AS v(meter_id, mark)
    CROSS JOIN LATERAL (
        SELECT m.first_hour, m.last_hour FROM {InboundMessage._meta.db_table} m
        WHERE m.meter_id = v.meter_id AND m.status = %s
          AND m.last_hour > coalesce(v.mark, -1)
        ORDER BY m.first_hour
    ) r
    ORDER BY v.meter_id, r.first_hour
"""  # noqa: S608 - the table name is the model's


def accepted_ranges(marks: Mapping[int, int | None]) -> dict[int, list[tuple[int, int]]]:
    """The (first hour, last hour) ranges of each meter's accepted reports that end after its
    mark, sorted by first hour, in one query."""
    ids = sorted(marks)
    with array_cursor() as cursor:
        cursor.execute(
            ACCEPTED_RANGES, [ids, [marks[pk] for pk in ids], InboundStatus.ACCEPTED.value]
        )
        ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for meter_id, first, last in cursor.fetchall():
            ranges[meter_id].append((first, last))
    return ranges


def last_hours_covered(
    marks: Mapping[int, int | None], ranges: Mapping[int, Iterable[tuple[int, int]]]
) -> dict[int, int | None]:
    """Each meter's last hour its mark or its accepted reports (`accepted_ranges`) cover: no
    reading after it has come by SMS."""
    covered = {}
    for pk, mark in marks.items():
        lasts = [last for _, last in ranges.get(pk, ())]  # each after the mark
        covered[pk] = max(lasts) if lasts else mark
    return covered


def extend_marks(
    marks: Mapping[int, int | None], ranges: Mapping[int, Iterable[tuple[int | None, int | None]]]
) -> dict[int, int | None]:
    """Each meter's mark extended over its ranges (`accepted_ranges`, and any more reports
    accepted since, in any order): those ending at or before the mark, or covering no hour,
    change nothing."""
    extended = {}
    for pk, mark in marks.items():
        after = sorted(
            (first, last)
            for first, last in ranges.get(pk, ())
            if last is not None and last > (-1 if mark is None else mark)
        )
        extended[pk] = extend_mark(mark, after)
    return extended


def extend_mark(hwm: int | None, ranges: Iterable[tuple[int, int]]) -> int | None:
    """Extend a high-water mark over (first hour, last hour) ranges sorted by first hour, up
    to the first gap; with no mark yet, the first range starts it."""
    for first, last in ranges:
        if hwm is None:
            hwm = first - 1
        if first > hwm + 1:
            break
        hwm = max(hwm, last)
    return hwm


@dataclass(frozen=True)
class AckDue:
    """A report to answer: under the key it came with, carrying the meter's mark as it is
    once the report (and the rest of its batch) is stored."""

    meter: Meter
    key: MeterKey
    msisdn: str
    answers_counter: int


def queue_acks(
    due: list[AckDue], *, now: datetime, counters: Mapping[int, list[int]] | None = None
) -> None:
    """Seal the acks and put them in the outbox (held where a meter's daily cap is reached);
    sent once the transaction commits. `counters`: the downlink counters already reserved
    for them, if the caller did (`queue.queue_many`)."""
    queue.queue_many(
        [
            queue.Downlink(
                item.meter,
                item.key,
                item.msisdn,
                acks.ack(item.answers_counter, item.meter.acked_through_hour, now=now),
                OutboundKind.ACK,
            )
            for item in due
        ],
        now=now,
        counters=counters,
    )


def silent_before(last_heard: datetime | None, *, now: datetime) -> bool:
    """A meter heard from after a silence (or for the first time): its silence alert closes."""
    return last_heard is None or now - last_heard > timedelta(hours=settings.METER_SILENCE_HOURS)
