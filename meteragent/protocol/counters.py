"""Sender-side counters that survive a power cut without ever repeating a nonce.

The nonce is ``prefix || counter``, so reusing a counter under one key would reuse a GCM nonce
(fatal: it leaks the XOR of plaintexts and the authentication key). The sender therefore
persists a *reservation limit* before it uses any counter below that limit:

* the store holds ``limit``: every counter below it may already have been used;
* :meth:`CounterReservation.next` hands out counters from memory; when it reaches ``limit`` it
  first stores ``limit + block`` (durably), then continues;
* after a reboot the sender starts again at the stored limit, skipping at most ``block - 1``
  counters that were reserved but never used. A power cut in the middle of sending can
  therefore lose counters, never repeat one.

:class:`CounterStore` is the persistence seam: the meter implements it over its SQLite store
(write + fsync), the server over a database row (UPDATE in a transaction).
"""

from __future__ import annotations

from typing import Protocol

from meteragent.protocol.errors import CounterExhausted
from meteragent.protocol.replay import MAX_COUNTER

DEFAULT_BLOCK = 16


class CounterStore(Protocol):
    """Durable storage of one integer. ``store`` must not return before the value is durable."""

    def load(self) -> int:
        """The last stored value, or 0 if nothing was ever stored."""
        ...

    def store(self, value: int) -> None: ...


class MemoryCounterStore:
    """A :class:`CounterStore` in memory, for tests and for tools that never reboot."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.writes = 0

    def load(self) -> int:
        return self.value

    def store(self, value: int) -> None:
        self.value = value
        self.writes += 1


class CounterReservation:
    """Hands out strictly increasing counters 1..2**32-1 for one (key id, direction)."""

    def __init__(self, store: CounterStore, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._store = store
        self._block = block
        limit = store.load()
        if limit < 0:
            raise ValueError("stored counter limit is negative")
        # Counter 0 is never sent (the replay window uses 0 for "nothing seen").
        self._next = max(limit, 1)
        self._limit = limit

    @property
    def peek(self) -> int:
        """The counter the next call to :meth:`next` returns (if not exhausted)."""
        return self._next

    def next(self) -> int:
        """Reserve (durably, if needed) and return the next counter."""
        if self._next > MAX_COUNTER:
            raise CounterExhausted("all 2**32-1 counters used under this key id; rekey")
        if self._next >= self._limit:
            new_limit = min(self._next + self._block, MAX_COUNTER + 1)
            self._store.store(new_limit)  # durable before the counter is used
            self._limit = new_limit
        counter = self._next
        self._next += 1
        return counter
