"""Compact encoding of hourly readings and meter events inside a report.

Readings: a count, the first reading's UTC hour (uint32, hours since the Unix epoch) and its
absolute value (varint Wh), then one *entry* per further reading:

* ``uvarint(delta << 1)`` - the next hour, cumulative value grew by ``delta`` Wh (the common
  case: 1 byte below 64 Wh, 2 bytes below 8192 Wh);
* ``uvarint(gap << 1 | 1)`` then ``uvarint(zigzag(delta))`` - ``gap`` hours are missing before
  this reading, and/or the value went *down* (a meter fault or tampering the server must see).

Events: a count, then per event ``kind`` (u8), ``age`` (varint minutes before the report's
``sent_at``) and ``arg`` (zigzag varint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise

from meteragent.protocol.codec import Reader, Writer
from meteragent.protocol.errors import Malformed
from meteragent.protocol.varint import decode_uvarint, unzigzag, uvarint_size, zigzag

MAX_HOUR = 0xFFFF_FFFF  # uint32 unix hours: good until the year 491,936
MAX_WH = (1 << 48) - 1  # 281 TWh: no meter gets near; keeps every delta inside 64 bits
MAX_ITEMS = 255  # counts are one byte
ARG_MIN, ARG_MAX = -(1 << 31), (1 << 31) - 1


class EventKind(IntEnum):
    """Meter events carried in reports (the wire value is the enum value)."""

    TAMPER = 1  # arg: which sensor (lid switch, magnet, ...)
    REBOOT = 2  # arg: reason code (0 power loss, 1 watchdog, 2 update, ...)
    CLOCK_STEP = 3  # arg: the correction the server time asked for, in seconds (signed)
    SERVICE_ACTION = 4  # arg: service-console action code
    STORE_INTEGRITY = 5  # arg: number of records that failed their integrity check


@dataclass(frozen=True, order=True)
class Reading:
    """Cumulative energy ``wh`` (watt-hours) at the start of UTC hour ``hour`` (unix hours)."""

    hour: int
    wh: int

    def __post_init__(self) -> None:
        if not 0 < self.hour <= MAX_HOUR:
            raise ValueError(f"hour out of range: {self.hour}")
        if not 0 <= self.wh <= MAX_WH:
            raise ValueError(f"wh out of range: {self.wh}")


@dataclass(frozen=True)
class Event:
    """A meter event at ``time`` (unix seconds, whole minutes) with a small signed ``arg``."""

    kind: EventKind
    time: int
    arg: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, EventKind):
            raise ValueError(f"unknown event kind: {self.kind!r}")
        if self.time < 0 or self.time % 60:
            raise ValueError("event time must be a non-negative whole minute")
        if not ARG_MIN <= self.arg <= ARG_MAX:
            raise ValueError(f"event arg out of int32 range: {self.arg}")


def _entry_size(prev: Reading, cur: Reading) -> int:
    gap = cur.hour - prev.hour - 1
    delta = cur.wh - prev.wh
    if gap == 0 and delta >= 0:
        return uvarint_size(delta << 1)
    return uvarint_size((gap << 1) | 1) + uvarint_size(zigzag(delta))


def event_size(event: Event, sent_at: int) -> int:
    age = sent_at // 60 - event.time // 60
    return 1 + uvarint_size(age) + uvarint_size(zigzag(event.arg))


def check_readings(readings: Sequence[Reading]) -> None:
    if len(readings) > MAX_ITEMS:
        raise ValueError("more than 255 readings")
    for prev, cur in pairwise(readings):
        if cur.hour <= prev.hour:
            raise ValueError("reading hours must be strictly increasing")


def check_events(events: Sequence[Event], sent_at: int) -> None:
    if len(events) > MAX_ITEMS:
        raise ValueError("more than 255 events")
    for event in events:
        if event.time // 60 > sent_at // 60:
            raise ValueError("event is later than the report's sent_at")


def write_events(w: Writer, events: Sequence[Event], sent_at: int) -> None:
    w.u8(len(events))
    for event in events:
        w.u8(int(event.kind))
        w.uvarint(sent_at // 60 - event.time // 60)
        w.svarint(event.arg)


def read_events(r: Reader, sent_at: int) -> tuple[Event, ...]:
    events = []
    for _ in range(r.u8()):
        kind_raw = r.u8()
        age = r.uvarint()
        arg = r.svarint()
        try:
            kind = EventKind(kind_raw)
        except ValueError:
            raise Malformed(f"unknown event kind {kind_raw}") from None
        minute = sent_at // 60 - age
        if minute < 0:
            raise Malformed("event age before the epoch")
        if not ARG_MIN <= arg <= ARG_MAX:
            raise Malformed("event arg out of range")
        events.append(Event(kind, minute * 60, arg))
    return tuple(events)


def write_readings(w: Writer, readings: Sequence[Reading]) -> None:
    w.u8(len(readings))
    if not readings:
        return
    w.u32(readings[0].hour)
    w.uvarint(readings[0].wh)
    for prev, cur in pairwise(readings):
        gap = cur.hour - prev.hour - 1
        delta = cur.wh - prev.wh
        if gap == 0 and delta >= 0:
            w.uvarint(delta << 1)
        else:
            w.uvarint((gap << 1) | 1)
            w.svarint(delta)


def _checked_reading(hour: int, wh: int, _new=object.__new__) -> Reading:
    """A Reading whose range `read_readings` has just checked, without checking it again (the
    server decodes some 24 readings per frame, thousands of frames a second)."""
    reading = _new(Reading)
    reading.__dict__.update(hour=hour, wh=wh)
    return reading


def read_readings(r: Reader) -> tuple[Reading, ...]:
    count = r.u8()
    if count == 0:
        return ()
    hour = r.u32()
    wh = r.uvarint()
    if hour == 0 or hour > MAX_HOUR or wh > MAX_WH:
        raise Malformed("first reading out of range")
    out = [_checked_reading(hour, wh)]
    # The entries are read in this loop, not through Reader calls: the server decodes some
    # 24 per frame, thousands of frames a second. Nearly every entry is one varint of one or
    # two bytes; anything longer takes decode_uvarint, which is as strict.
    data, pos = r.data, r.pos
    end = len(data)
    for _ in range(count - 1):
        if pos + 1 < end and data[pos] < 0x80:
            head = data[pos]
            pos += 1
        elif pos + 1 < end and data[pos + 1] < 0x80 and data[pos + 1]:
            head = (data[pos] & 0x7F) | (data[pos + 1] << 7)
            pos += 2
        else:
            head, pos = decode_uvarint(data, pos)
        if head & 1:
            gap = head >> 1
            raw, pos = decode_uvarint(data, pos)
            delta = unzigzag(raw)
            if gap == 0 and delta >= 0:
                raise Malformed("non-canonical reading entry")  # must use the short form
        else:
            gap, delta = 0, head >> 1
        hour += gap + 1
        wh += delta
        # Hours only grow from a first hour above 0: in range means at most MAX_HOUR.
        if hour > MAX_HOUR or not 0 <= wh <= MAX_WH:
            raise Malformed("reading out of range")
        out.append(_checked_reading(hour, wh))
    r.pos = pos
    return tuple(out)
