"""Clock rules of the meter (S5, IC22): when, and how far, an ack may move the clock.

The meter takes time only from an ack that (1) verified under the current key and passed the
replay window (the caller guarantees this by passing a decoded :class:`Ack`), (2) answers the
meter's *own latest* report counter - which works as a challenge: no ack built before that
report existed can answer it - and (3) arrived within :data:`MAX_ACK_DELAY_SECONDS` of sending
that report (measured on the monotonic clock, which no time step moves).

The server stamped ``server_time`` between the report's sending and the ack's arrival, so the
true time now lies in ``[server_time, server_time + elapsed]``. The meter moves its clock only
if it lies outside that interval (plus a small tolerance), by the smallest correction that
brings it inside, and never by more than :data:`MAX_STEP_SECONDS` per ack. A larger
difference is stepped by the bound and reported upstream as a CLOCK_STEP event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from meteragent.protocol.messages import Ack
from meteragent.protocol.readings import ARG_MAX, ARG_MIN, Event, EventKind

MAX_STEP_SECONDS = 300
MAX_ACK_DELAY_SECONDS = 1800
TOLERANCE_SECONDS = 2


class ClockAction(Enum):
    KEEP = "keep"  # the ack is usable and the clock is already right
    STEP = "step"  # add ``step_seconds`` to the wall clock
    IGNORE = "ignore"  # the ack must not be used for time (its other content still counts)


class ClockReason(Enum):
    IN_SYNC = "in_sync"
    STEPPED = "stepped"
    STEPPED_BOUNDED = "stepped_bounded"
    CLOCK_UNSET = "clock_unset"
    NOT_LATEST_REPORT = "not_latest_report"
    ACK_TOO_LATE = "ack_too_late"
    NO_REPORT_SENT = "no_report_sent"


@dataclass(frozen=True)
class ClockDecision:
    action: ClockAction
    reason: ClockReason
    step_seconds: int = 0  # what to apply now
    wanted_seconds: int = 0  # what the ack asked for
    report_event: bool = False  # queue a CLOCK_STEP event for the next report

    def event(self, at: int) -> Event | None:
        """The CLOCK_STEP event to report (arg: the correction asked for), if any.
        ``at`` is the meter's wall clock after the step, in unix seconds."""
        if not self.report_event:
            return None
        arg = max(ARG_MIN, min(ARG_MAX, self.wanted_seconds))
        return Event(EventKind.CLOCK_STEP, at - at % 60, arg)


def decide_clock(
    ack: Ack,
    *,
    latest_report_counter: int | None,
    report_sent_monotonic: float,
    now_monotonic: float,
    now_wall: int,
    clock_set: bool = True,
    max_step: int = MAX_STEP_SECONDS,
    max_ack_delay: int = MAX_ACK_DELAY_SECONDS,
    tolerance: int = TOLERANCE_SECONDS,
) -> ClockDecision:
    """Decide what an authenticated, replay-checked ``ack`` does to the meter's clock.

    ``latest_report_counter``/``report_sent_monotonic``: the uplink counter and monotonic time
    of the last frame the meter sent in this boot (None if none). ``clock_set`` is False when
    the meter knows its wall clock is meaningless (cold boot without RTC); then the whole
    correction is applied once, and still reported.
    """
    if latest_report_counter is None:
        return ClockDecision(ClockAction.IGNORE, ClockReason.NO_REPORT_SENT)
    if ack.answers_counter != latest_report_counter:
        return ClockDecision(ClockAction.IGNORE, ClockReason.NOT_LATEST_REPORT)
    elapsed = now_monotonic - report_sent_monotonic
    if not 0 <= elapsed <= max_ack_delay:
        return ClockDecision(ClockAction.IGNORE, ClockReason.ACK_TOO_LATE)
    target = min(max(now_wall, ack.server_time), ack.server_time + int(elapsed))
    wanted = target - now_wall
    if not clock_set:
        return ClockDecision(ClockAction.STEP, ClockReason.CLOCK_UNSET, wanted, wanted, True)
    if abs(wanted) <= tolerance:
        return ClockDecision(ClockAction.KEEP, ClockReason.IN_SYNC, 0, wanted)
    if abs(wanted) <= max_step:
        return ClockDecision(ClockAction.STEP, ClockReason.STEPPED, wanted, wanted)
    step = max_step if wanted > 0 else -max_step
    return ClockDecision(ClockAction.STEP, ClockReason.STEPPED_BOUNDED, step, wanted, True)
