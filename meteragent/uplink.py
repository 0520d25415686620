"""Uplink counters that are never used twice under one key, whatever happens to the store.

The uplink nonce is ``prefix(key id) || counter``; a counter used twice under one key reuses an
AES-GCM nonce. Three independent guards (docs/meteragent.md, "Counter floor"):

* **Reservations in the store**: a block of counters is reserved durably before any of it
  is used (``protocol.counters.CounterReservation``). Enough while the store keeps every
  committed write.
* **The same reservation in a second file** (``counters.json``, written atomically before the
  store): a rollback of the store alone (a lost WAL tail, an older copy of ``meter.db`` put
  back) cannot lower it.
* **A clock floor**: a counter ``c`` is only sent once the wall clock has reached
  ``c * COUNTER_FLOOR_SECONDS`` (``ready_at``; the agent waits for it, which paces bursts to
  one frame per period), and every start begins at ``now // COUNTER_FLOOR_SECONDS + 1``. So
  every counter used before a start is below the start's floor, even after the whole SD card
  was put back to an older image - as long as the clock has not gone back.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from meteragent.atomic import write_atomic
from meteragent.clock import Clock
from meteragent.protocol import CounterReservation
from meteragent.protocol.replay import MAX_COUNTER
from meteragent.store import Store

log = logging.getLogger(__name__)

# One counter per period of the wall clock. 2 s: the 32-bit counter lasts until the year 2242,
# and a batch of 17 frames right after a start is paced over about half a minute.
COUNTER_FLOOR_SECONDS = 2
# A counter ahead of the clock by more than this means the clock is wrong (behind), not that a
# burst needs pacing: an ack moves the clock by at most 300 s, a batch is at most 17 frames.
MAX_PACE_SECONDS = 600
RESERVE_FORMAT = "meteragent-counters"


class ReserveFile:
    """``counters.json``: ``{name: limit}``, the store's reservations kept outside the store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, int]:
        try:
            body = json.loads(self.path.read_bytes())
            if body.get("format") != RESERVE_FORMAT:
                raise ValueError("not a counter file")
            return {str(k): int(v) for k, v in body["limits"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Only ever a lower bound next to the store's reservation and the clock floor.
            log.error(
                "counter file %s unreadable (%s); using the store and the clock", self.path, exc
            )
            return {}

    def load(self, name: str) -> int:
        return self._read().get(name, 0)

    def store(self, name: str, value: int) -> None:
        limits = self._read()
        if limits.get(name, 0) >= value:
            return
        limits[name] = value
        body = {"format": RESERVE_FORMAT, "limits": limits}
        write_atomic(self.path, json.dumps(body, sort_keys=True).encode() + b"\n", 0o600)


class DurableCounter:
    """:class:`~meteragent.protocol.CounterStore` over the store and the reserve file: the
    highest of the two is the limit, and a new limit is durable in both before use."""

    def __init__(self, store: Store, reserve: ReserveFile, name: str) -> None:
        self._store = store
        self._reserve = reserve
        self.name = name

    def load(self) -> int:
        return max(self._store.load_counter(self.name), self._reserve.load(self.name))

    def store(self, value: int) -> None:
        self._reserve.store(self.name, value)
        current = self._store.load_counter(self.name)
        if value > current:
            self._store.reserve_counter(self.name, value - current)


def clock_floor(clock: Clock) -> int | None:
    """The lowest counter a start may use now; None while the clock is unset."""
    if not clock.is_set:
        return None
    return int(clock.time()) // COUNTER_FLOOR_SECONDS + 1


class UplinkCounter:
    """The uplink counters of one key id (``uplink:<key id>``)."""

    def __init__(
        self, store: Store, reserve: ReserveFile, key_id: int, clock: Clock, block: int
    ) -> None:
        self.clock = clock
        durable = DurableCounter(store, reserve, f"uplink:{key_id}")
        floor = clock_floor(clock)
        if floor is not None and durable.load() < floor <= MAX_COUNTER:
            durable.store(floor)
        self._reservation = CounterReservation(durable, block)

    @property
    def peek(self) -> int:
        return self._reservation.peek

    def next(self) -> int:
        """The next counter, durably reserved. Call once :meth:`ready_at` allows it."""
        return self._reservation.next()

    def ready_at(self) -> float | None:
        """The wall time from which the next counter may be sent, or None for now.

        None too while the clock is unset, and when the counter is so far ahead of the clock
        that the clock must be wrong: waiting would silence the meter, and only an ack to a
        sent frame can correct the clock (the reservations still guard that counter)."""
        if not self.clock.is_set:
            return None
        due = self.peek * COUNTER_FLOOR_SECONDS
        lag = due - self.clock.time()
        if lag <= 0:
            return None
        if lag > MAX_PACE_SECONDS:
            log.error("uplink counter %d is %d s ahead of the clock: the clock is behind; "
                      "sending without the clock floor", self.peek, int(lag))  # fmt: skip
            return None
        return due
