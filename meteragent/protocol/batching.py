"""Splitting a backlog of readings and events into self-contained report frames.

Each frame carries its own absolute base reading, so any frame can be stored on its own even
if the others of the batch are lost or arrive out of order; ``remaining`` tells the server how
many frames of the batch follow, so it can send one ack after the last.
"""

from __future__ import annotations

from collections.abc import Sequence

from meteragent.protocol.messages import PAYLOAD_BYTES, Report
from meteragent.protocol.readings import MAX_ITEMS, Event, Reading, _entry_size, event_size
from meteragent.protocol.varint import uvarint_size

# type (1) + sent_at (4) + remaining (1) + event count (1) + reading count (1)
REPORT_FIXED_BYTES = 8


def build_reports(
    readings: Sequence[Reading], events: Sequence[Event] = (), *, sent_at: int
) -> list[Report]:
    """Pack ``readings`` (strictly increasing hours) and ``events`` greedily into as few
    reports as possible, oldest first. No readings and no events gives one heartbeat."""
    readings = sorted(readings)
    pending_events = list(events)
    frames: list[tuple[list[Event], list[Reading]]] = []
    i = 0
    while i < len(readings) or pending_events or not frames:
        used = REPORT_FIXED_BYTES
        frame_events: list[Event] = []
        while (
            pending_events
            and len(frame_events) < MAX_ITEMS
            and used + event_size(pending_events[0], sent_at) <= PAYLOAD_BYTES
        ):
            used += event_size(pending_events[0], sent_at)
            frame_events.append(pending_events.pop(0))
        frame_readings: list[Reading] = []
        while i < len(readings) and len(frame_readings) < MAX_ITEMS:
            cur = readings[i]
            cost = (
                4 + uvarint_size(cur.wh)
                if not frame_readings
                else _entry_size(frame_readings[-1], cur)
            )
            if used + cost > PAYLOAD_BYTES:
                break
            used += cost
            frame_readings.append(cur)
            i += 1
        frames.append((frame_events, frame_readings))
        if not frame_events and not frame_readings:
            break  # nothing left (heartbeat) - a single item always fits an empty frame
    total = len(frames)
    return [
        Report(sent_at, tuple(r), tuple(e), remaining=min(total - n - 1, MAX_ITEMS))
        for n, (e, r) in enumerate(frames)
    ]
