"""Replay window (receiver) and counter reservation (sender)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meteragent.protocol import (
    CounterExhausted,
    CounterReservation,
    KeyState,
    MemoryCounterStore,
    Replay,
    ReplayWindow,
    Report,
    Stale,
    decode_uplink,
    derive_keys,
    encode_uplink,
)

KEYS = derive_keys(bytes(range(32)), 1)


def test_in_order_then_replay() -> None:
    w = ReplayWindow()
    for c in (1, 2, 3):
        w = w.accept(c)
    for c in (1, 2, 3):
        with pytest.raises(Replay):
            w.accept(c)


def test_out_of_order_inside_window_accepted_once() -> None:
    w = ReplayWindow().accept(10)
    w = w.accept(5)
    w = w.accept(9)
    with pytest.raises(Replay):
        w.accept(5)
    w = w.accept(12)
    w = w.accept(11)
    with pytest.raises(Replay):
        w.accept(9)
    assert w.highest == 12


def test_window_edges() -> None:
    w = ReplayWindow().accept(100)
    w.check(37)  # 100 - 63: oldest still acceptable
    with pytest.raises(Stale):
        w.check(36)
    w = w.accept(37)
    with pytest.raises(Replay):
        w.accept(37)
    w2 = w.accept(100 + 64)  # jump by the full window clears everything
    assert w2.bitmap == 1
    with pytest.raises(Stale):
        w2.check(100)


def test_serialisation_round_trip() -> None:
    w = ReplayWindow().accept(70).accept(65).accept(8)
    assert ReplayWindow.from_tuple(w.to_tuple()) == w
    with pytest.raises(ValueError):
        ReplayWindow.from_tuple((0, 5))
    with pytest.raises(ValueError):
        ReplayWindow.from_tuple((1, 1 << 64))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), max_size=200))
def test_window_matches_a_reference_model(counters: list[int]) -> None:
    w = ReplayWindow()
    seen: set[int] = set()
    for c in counters:
        highest = max(seen, default=0)
        if c in seen and c > highest - 64:
            with pytest.raises(Replay):
                w.accept(c)
        elif c <= highest - 64:
            with pytest.raises(Stale):
                w.accept(c)
        else:
            w = w.accept(c)
            seen.add(c)
        assert w.highest == max(seen, default=0)


def test_frames_replayed_and_reordered_through_open() -> None:
    frames = [encode_uplink(Report(1000 * k), keys=KEYS, counter=k) for k in range(1, 70)]
    window = ReplayWindow()

    def deliver(frame: bytes) -> None:
        nonlocal window
        window = decode_uplink(frame, lambda _k: KeyState(KEYS, window)).window

    deliver(frames[4])  # counter 5
    deliver(frames[1])  # counter 2 arrives late: fine
    with pytest.raises(Replay):
        deliver(frames[1])
    deliver(frames[68])  # counter 69: counters 1..5 are now older than the window
    with pytest.raises(Stale):
        deliver(frames[0])
    with pytest.raises(Replay):
        deliver(frames[68])
    deliver(frames[10])  # 11 is 58 behind 69: still accepted


def test_reservation_persists_before_use_and_never_repeats_after_power_cut() -> None:
    store = MemoryCounterStore()
    used: list[int] = []
    for _ in range(5):  # five boots, each sending a few frames then losing power
        res = CounterReservation(store, block=4)
        used += [res.next() for _ in range(6)]
    assert used == sorted(set(used))  # strictly increasing across reboots: no reuse
    assert used[0] == 1
    assert store.value > used[-1]  # the stored limit always covers every counter used


def test_store_failure_means_no_counter() -> None:
    class FailingStore(MemoryCounterStore):
        def store(self, value: int) -> None:
            raise OSError("disk full")

    res = CounterReservation(FailingStore(), block=4)
    with pytest.raises(OSError):
        res.next()
    with pytest.raises(OSError):
        res.next()  # still nothing handed out without a durable reservation


def test_writes_are_amortised_by_block() -> None:
    store = MemoryCounterStore()
    res = CounterReservation(store, block=16)
    for _ in range(64):
        res.next()
    assert store.writes == 4


def test_exhaustion() -> None:
    store = MemoryCounterStore(0xFFFF_FFFE)
    res = CounterReservation(store, block=16)
    assert res.next() == 0xFFFF_FFFE
    assert res.next() == 0xFFFF_FFFF
    with pytest.raises(CounterExhausted):
        res.next()
