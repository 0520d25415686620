"""Readings encoding, varints, capacity per SMS and backlog splitting."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meteragent.protocol import (
    Event,
    EventKind,
    KeyState,
    Malformed,
    Reading,
    ReplayWindow,
    Report,
    build_reports,
    decode_uplink,
    derive_keys,
    encode_uplink,
)
from meteragent.protocol.messages import PAYLOAD_BYTES, body_size, decode_payload, encode_payload
from meteragent.protocol.varint import decode_uvarint, encode_uvarint, unzigzag, zigzag

KEYS = derive_keys(bytes(range(32)), 1)
T0 = 1_767_225_600
H0 = T0 // 3600


def test_varint_known_values() -> None:
    assert encode_uvarint(0) == b"\x00"
    assert encode_uvarint(127) == b"\x7f"
    assert encode_uvarint(128) == b"\x80\x01"
    assert encode_uvarint(300) == b"\xac\x02"
    assert encode_uvarint(2**64 - 1) == b"\xff" * 9 + b"\x01"
    assert [zigzag(v) for v in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_uvarint(value)
    assert decode_uvarint(encoded, 0) == (value, len(encoded))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_zigzag_round_trip(value: int) -> None:
    assert unzigzag(zigzag(value)) == value


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x00", b"\xff" * 10 + b"\x01", b"\xff" * 9 + b"\x02"],
    ids=["empty", "truncated", "overlong", "too-long", "over-64-bits"],
)
def test_varint_rejects_bad_forms(data: bytes) -> None:
    with pytest.raises(Malformed):
        decode_uvarint(data, 0)


def household_day(rng: random.Random, start: int = 12_345_678, hours: int = 24) -> list[Reading]:
    out, wh = [], start
    for i in range(hours):
        out.append(Reading(H0 + i, wh))
        wh += rng.randint(0, 5000)  # 0-5 kWh per hour
    return out


def test_a_full_day_fits_one_frame_even_at_5_kwh_every_hour() -> None:
    worst = [Reading(H0 + i, 99_999_999 + i * 5000) for i in range(24)]
    report = Report(T0 + 86_400, tuple(worst))
    assert body_size(report) <= PAYLOAD_BYTES
    frames = build_reports(worst, sent_at=T0 + 86_400)
    assert len(frames) == 1 and len(frames[0].readings) == 24


def test_capacity_figures_stated_in_the_docs() -> None:
    # These numbers are quoted in docs/protocol.md and docs/benchmarks.md.
    def capacity(delta: int, start: int = 12_345_678) -> int:
        rs = [Reading(H0 + i, start + i * delta) for i in range(300)]
        return len(build_reports(rs, sent_at=T0 + 400 * 3600)[0].readings)

    assert capacity(0) == 102  # 1-byte entries
    assert capacity(63) == 102
    assert capacity(700) == 51  # typical household hour: 2-byte entries
    assert capacity(5000) == 51  # 5 kWh every hour still 2 bytes
    assert capacity(8192) == 34  # 3-byte entries
    rng = random.Random(1)
    assert len(build_reports(household_day(rng, hours=200), sent_at=T0 + 9e5)[0].readings) >= 50


def test_gaps_and_backward_steps_round_trip() -> None:
    readings = (
        Reading(H0, 100),
        Reading(H0 + 1, 100),
        Reading(H0 + 2, 50),  # backwards, no gap
        Reading(H0 + 1000, 51),  # big gap
        Reading(H0 + 1001, 10_000_000),
    )
    report = Report(T0 + 1002 * 3600, readings)
    assert decode_payload(encode_payload(report)) == report


def test_non_canonical_reading_entry_rejected() -> None:
    report = Report(T0 + 7200, (Reading(H0, 10), Reading(H0 + 1, 11)))
    pt = bytearray(encode_payload(report))
    # Entry for +1 Wh, next hour is 0x02; the long form is 0x01 (gap 0) 0x02 (zigzag 1).
    idx = pt.index(b"\x02", 8 + 4 + 1)
    long_form = pt[:idx] + b"\x01\x02" + pt[idx + 1 : -1]
    with pytest.raises(Malformed):
        decode_payload(bytes(long_form))


def test_unknown_event_kind_rejected() -> None:
    report = Report(T0, events=(Event(EventKind.REBOOT, T0 - T0 % 60, 0),))
    pt = bytearray(encode_payload(report))
    assert pt[7] == EventKind.REBOOT
    pt[7] = 99
    with pytest.raises(Malformed):
        decode_payload(bytes(pt))


def test_backlog_of_a_month_splits_into_self_contained_frames() -> None:
    rng = random.Random(7)
    readings = household_day(rng, hours=24 * 30)
    events = [Event(EventKind.REBOOT, T0 + 3600 * k, k) for k in range(40)]
    sent_at = T0 + 24 * 30 * 3600
    reports = build_reports(readings, events, sent_at=sent_at)
    assert [r.remaining for r in reports] == list(range(len(reports) - 1, -1, -1))
    assert [r for rep in reports for r in rep.readings] == readings
    assert [e for rep in reports for e in rep.events] == events
    assert len(reports) <= 16  # 720 readings at >= 50 per frame, plus the events
    window = ReplayWindow()
    for counter, rep in enumerate(reports, start=1):
        frame = encode_uplink(rep, keys=KEYS, counter=counter)
        opened = decode_uplink(frame, lambda _k, w=window: KeyState(KEYS, w))
        window = opened.window
        assert opened.message == rep


def test_nothing_to_send_gives_one_heartbeat() -> None:
    (only,) = build_reports([], sent_at=T0)
    assert only.is_heartbeat and only.remaining == 0 and not only.events


readings_strategy = st.lists(
    st.tuples(st.integers(1, 30), st.integers(-3000, 5000)), min_size=0, max_size=400
).map(
    lambda steps: [
        Reading(H0 + sum(s[0] for s in steps[: i + 1]), 10**7 + sum(s[1] for s in steps[: i + 1]))
        for i in range(len(steps))
    ]
)


@settings(max_examples=60, deadline=None)
@given(readings_strategy, st.lists(st.sampled_from(list(EventKind)), max_size=30))
def test_random_backlogs_round_trip(readings: list[Reading], kinds: list[EventKind]) -> None:
    sent_at = T0 + 20_000 * 3600
    events = [Event(k, T0 + 60 * i, i - 5) for i, k in enumerate(kinds)]
    reports = build_reports(readings, events, sent_at=sent_at)
    assert [r for rep in reports for r in rep.readings] == readings
    assert [e for rep in reports for e in rep.events] == events
    for rep in reports:
        assert decode_payload(encode_payload(rep)) == rep
