"""Clock rules (S5): only the ack to the latest report, only soon enough, bounded steps."""

from __future__ import annotations

from meteragent.protocol import Ack, ClockAction, ClockReason, EventKind, decide_clock
from meteragent.protocol.timesync import MAX_STEP_SECONDS

T = 1_767_225_600


def decide(server_time: int, now_wall: int, *, answers: int = 9, elapsed: float = 40.0, **kw):
    return decide_clock(
        Ack(answers, None, server_time),
        latest_report_counter=9,
        report_sent_monotonic=1000.0,
        now_monotonic=1000.0 + elapsed,
        now_wall=now_wall,
        **kw,
    )


def test_in_sync_within_the_round_trip_interval() -> None:
    # The server stamped T somewhere in the 40 s round trip: any meter time in [T, T+40] is fine.
    for now in (T, T + 20, T + 40, T - 2):
        d = decide(T, now)
        assert d.action is ClockAction.KEEP and d.step_seconds == 0 and not d.report_event


def test_small_error_is_corrected_to_the_interval_edge() -> None:
    d = decide(T, T - 100)
    assert (d.action, d.reason, d.step_seconds) == (ClockAction.STEP, ClockReason.STEPPED, 100)
    d = decide(T, T + 40 + 250)
    assert d.step_seconds == -250 and not d.report_event


def test_large_error_is_bounded_and_reported() -> None:
    d = decide(T, T - 3 * 3600)
    assert d.reason is ClockReason.STEPPED_BOUNDED
    assert d.step_seconds == MAX_STEP_SECONDS == 300
    assert d.wanted_seconds == 3 * 3600
    event = d.event(T - 3 * 3600 + 300)
    assert event is not None and event.kind is EventKind.CLOCK_STEP and event.arg == 10800
    d = decide(T, T + 10**6)
    assert d.step_seconds == -300 and d.report_event


def test_ack_to_an_older_report_is_not_used_for_time() -> None:
    d = decide(T, T - 100, answers=8)
    assert (d.action, d.reason) == (ClockAction.IGNORE, ClockReason.NOT_LATEST_REPORT)


def test_late_ack_is_not_used_for_time() -> None:
    d = decide(T, T - 100, elapsed=1801)
    assert (d.action, d.reason) == (ClockAction.IGNORE, ClockReason.ACK_TOO_LATE)
    d = decide(T, T - 100, elapsed=-1)  # monotonic clock from another boot
    assert d.action is ClockAction.IGNORE


def test_no_report_sent_in_this_boot() -> None:
    d = decide_clock(
        Ack(1, None, T),
        latest_report_counter=None,
        report_sent_monotonic=0,
        now_monotonic=1,
        now_wall=T,
    )
    assert d.reason is ClockReason.NO_REPORT_SENT and d.event(T) is None


def test_unset_clock_takes_the_full_step_once_and_reports_it() -> None:
    d = decide(T, 0, clock_set=False)
    assert d.reason is ClockReason.CLOCK_UNSET
    assert d.step_seconds == T and d.report_event
