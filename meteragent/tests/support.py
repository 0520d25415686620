"""Test helpers shared by the meter agent's tests (no test framework imported here; inside
the tests package, so the installed agent does not carry them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meteragent.agent import Agent
from meteragent.clock import FakeClock
from meteragent.display import Display
from meteragent.energy import SimulatedEnergySource
from meteragent.keyfile import DeviceKeys
from meteragent.protocol.frame import parse_header
from meteragent.store import Store
from meteragent.transport import Incoming, Transport

UTILITY = "+447700900123"
METER = "MTR0000000000000000000042"
ROOT = bytes(range(100, 132))
KEY_ID = 3
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
SIGNING_PUBLIC = bytes(range(32))
PAGE = 4096  # SQLite's default page size


class NonceReuse(AssertionError):
    """One (key id, counter) left the meter with two different frames."""


class RecordingNetwork:
    """A :class:`~meteragent.transport.Transport` standing in for the SMS network: it keeps
    every frame sent, by (key id, counter), and raises :class:`NonceReuse` when a pair comes
    with a second, different frame. Waiting jumps the fake clock to the deadline."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: dict[tuple[int, int], bytes] = {}
        self.frames: list[bytes] = []

    def send(self, to: str, payload: bytes) -> None:
        header = parse_header(payload)
        pair = (header.key_id, header.counter)
        earlier = self.sent.setdefault(pair, payload)
        self.frames.append(payload)
        if earlier != payload:
            raise NonceReuse(f"key id {pair[0]} counter {pair[1]} sent with two different frames")

    def wait(self, deadline: float) -> Incoming | None:
        self.clock.waited_until(deadline)
        return None

    def interrupt(self) -> None:
        """Nothing blocks."""

    def close(self) -> None:
        """Nothing to release."""


def make_agent(
    store: Store, clock: FakeClock, transport: Transport, *, display: Display | None = None
) -> Agent:
    """An agent for meter ``METER`` (key ``KEY_ID``/``ROOT``), simulated energy, not started."""
    return Agent(
        store=store,
        keys=DeviceKeys(METER, KEY_ID, ROOT, UTILITY),
        transport=transport,
        energy=SimulatedEnergySource(seed=42, start=clock.time(), start_wh=1_000_000),
        clock=clock,
        signing_public=SIGNING_PUBLIC,
        display=display,
    )


# ------------------------------------------------------------------ damaged storage


def fill_store(path: Path, hours: int = 120) -> None:
    """A closed store with ``hours`` readings and some events (WAL checkpointed into the
    file, so damage to the file hits records)."""
    with Store(path) as store:
        for n in range(hours):
            store.record_reading(T0 // 3600 + n, 1000 + 7 * n)
            if n % 10 == 0:
                store.add_event("reboot", T0 // 3600 + n, 0)


def zero_root_page(path: Path, name: str) -> None:
    """Zero the 4 KiB root page of table or index ``name`` (a page the card lost)."""
    db = sqlite3.connect(path)
    try:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (name,)).fetchone()
    finally:
        db.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * PAGE)
        f.write(bytes(PAGE))


def truncate_file(path: Path) -> None:
    """Keep the first third of the file (a write cut short, a copy that stopped)."""
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)


DAMAGE = {
    "zeroed table page": lambda path: zero_root_page(path, "readings"),
    # An index page: the records still read; SQLite's own check finds it.
    "zeroed index page": lambda path: zero_root_page(path, "sqlite_autoindex_readings_1"),
    "truncated file": truncate_file,
}
