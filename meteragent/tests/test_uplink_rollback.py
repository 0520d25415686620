"""No AES-GCM nonce twice under one key, whatever happens to the meter's storage.

Faults are injected into the files the agent leaves on disk at a crash (taken while the store is
open, so the WAL is still there): the WAL's tail lost (a card that lies about flushes), an older
copy of the store put back, an older image of the whole data directory put back. The agent is
restarted at once, on the same clock. The SMS network is a recorder that fails the test when one
(key id, counter) carries two different frames.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meteragent.agent import Agent
from meteragent.clock import FakeClock
from meteragent.store import Store
from meteragent.tests.support import KEY_ID, T0, RecordingNetwork, make_agent
from meteragent.uplink import ReserveFile, UplinkCounter

Image = dict[str, bytes]


def boot(data: Path, clock: FakeClock, net: RecordingNetwork) -> Agent:
    agent = make_agent(Store(data / "meter.db"), clock, net)
    agent.start()
    return agent


def crash_image(data: Path) -> Image:
    """The files as a power cut would leave them (the store still open: its WAL is there)."""
    return {p.name: p.read_bytes() for p in data.iterdir() if not p.name.endswith("-shm")}


def put_back(data: Path, image: Image) -> None:
    for p in data.iterdir():
        p.unlink()
    for name, content in image.items():
        (data / name).write_bytes(content)
        (data / name).chmod(0o600)


def wal_tail_lost(older: Image, newer: Image, rng: random.Random) -> Image:
    """The newer image with its WAL cut somewhere after the older image's WAL ended."""
    wal = "meter.db-wal"
    # The same boot, no checkpoint in between: one WAL that only grew.
    assert newer["meter.db"] == older["meter.db"] and newer[wal].startswith(older[wal])
    # Within the first frame written after the older image (a torn page, 24 + 4096 bytes).
    cut = rng.randint(len(older[wal]), min(len(newer[wal]), len(older[wal]) + 4119))
    return {**newer, wal: newer[wal][:cut]}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


ROLLBACKS = {
    "WAL tail lost": lambda before, after: wal_tail_lost(before, after, random.Random(1)),
    # Store, counter file and all: only the clock is left to say how far counters went.
    "older image of the whole box": lambda before, _after: before,
}


@pytest.mark.parametrize("rollback", list(ROLLBACKS))
def test_a_rollback_and_an_immediate_restart_never_reuse_a_counter(
    data: Path, rollback: str
) -> None:
    clock = FakeClock(T0 + 600, settle=0)
    net = RecordingNetwork(clock)
    agent = boot(data, clock, net)
    before = crash_image(data)
    for _ in range(3):
        agent.send_now()
    after = crash_image(data)
    agent.store.close()
    put_back(data, ROLLBACKS[rollback](before, after))
    restarted = boot(data, clock, net)  # at once: the clock has not moved
    assert restarted.send_now()
    restarted.store.close()


def test_an_older_store_with_the_clock_set_back_never_reuses_a_counter(data: Path) -> None:
    """Only the store is put back, and the clock is wrong by two hours: the reservation kept
    outside the store still holds, and the meter still sends rather than waiting for the clock."""
    clock = FakeClock(T0 + 4 * 3600, settle=0)
    net = RecordingNetwork(clock)
    agent = boot(data, clock, net)
    old = crash_image(data)
    for _ in range(4):
        agent.send_now()
    agent.store.close()
    put_back(
        data,
        {**crash_image(data), "meter.db": old["meter.db"], "meter.db-wal": old["meter.db-wal"]},
    )
    clock.step(-2 * 3600)
    sent_before = len(net.frames)
    restarted = boot(data, clock, net)
    assert restarted.send_now()
    assert len(net.frames) > sent_before
    assert clock.time() < T0 + 3 * 3600  # it did not wait for the clock to catch up
    restarted.store.close()


def test_crash_and_rollback_loop_never_sends_two_frames_under_one_nonce(data: Path) -> None:
    """120 crashes, each followed by a fault and an immediate restart."""
    rng = random.Random(20)
    clock = FakeClock(T0 + 600, settle=0)
    net = RecordingNetwork(clock)
    agent = boot(data, clock, net)
    history: list[Image] = []  # older images, from this boot and earlier ones
    faults = ("none", "wal tail lost", "older store", "older image")
    for crash in range(120):
        this_boot = [crash_image(data)]
        for _ in range(rng.randint(1, 2)):
            agent.tick()  # the hour's reading, if due
            agent.send_now()
            this_boot.append(crash_image(data))
        if rng.random() < 0.2:
            clock.advance(rng.uniform(0, 900))  # sometimes the next crash comes later
        now = this_boot.pop()
        history = (history + this_boot)[-6:]
        agent.store.close()
        fault = faults[crash % len(faults)]
        if fault == "wal tail lost":
            put_back(data, wal_tail_lost(rng.choice(this_boot), now, rng))
        elif fault == "older store":
            older = rng.choice(history)
            put_back(data, {**now, **{k: v for k, v in older.items() if k.startswith("meter.db")}})
        elif fault == "older image":
            put_back(data, rng.choice(history))
        else:
            put_back(data, now)
        agent = boot(data, clock, net)  # at once
    agent.store.close()
    assert len(net.frames) >= 300


# One boot: (frames sent, seconds until the crash, what the crash puts back, which earlier image)
_boots = st.lists(
    st.tuples(
        st.integers(0, 20),
        st.floats(0, 120),
        st.sampled_from(["nothing", "store", "counter file", "both"]),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None)
@given(boots=_boots)
def test_uplink_counters_never_repeat_over_any_history_of_crashes_and_rollbacks(
    tmp_path_factory: pytest.TempPathFactory, boots: list[tuple[int, float, str, int]]
) -> None:
    """The counter alone, over histories Hypothesis picks: whatever earlier image of the store,
    the counter file or both comes back, with the clock never going back, no counter twice."""
    data = tmp_path_factory.mktemp("counters")
    db, counters = data / "meter.db", data / "counters.json"
    clock = FakeClock(T0, settle=0)
    used: set[int] = set()
    images: list[Image] = []
    for frames, later, rollback, pick in boots:
        store = Store(db)
        up = UplinkCounter(store, ReserveFile(counters), KEY_ID, clock, block=16)
        for _ in range(frames):
            if (due := up.ready_at()) is not None:
                clock.advance(due - clock.time())
            counter = up.next()
            assert counter not in used
            used.add(counter)
        clock.advance(later)
        store.close()
        images.append(crash_image(data))
        older = images[pick % len(images)]
        parts = {
            "store": [db.name, db.name + "-wal"],
            "counter file": [counters.name],
            "both": [db.name, db.name + "-wal", counters.name],
        }.get(rollback, [])
        put_back(data, {**images[-1], **{k: v for k, v in older.items() if k in parts}})
