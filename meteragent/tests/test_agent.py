"""Acceptance: the real agent, the real modem driver, the fake modem over a pty, a test clock.

The test plays the utility's server with ``meteragent.protocol``: it decodes the frames the
agent submitted (``FakeModem.on_submit``), keeps readings and the contiguous high-water mark
as the server does (each frame covers first..last hour), and answers each batch with an ack
injected as an SMS-DELIVER.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

import pytest
import serial

from meteragent.agent import EV_REBOOT, Agent, AgentConfig
from meteragent.clock import FakeClock
from meteragent.energy import SimulatedEnergySource
from meteragent.keyfile import DeviceKeys
from meteragent.modem import GsmModem
from meteragent.modem.fake import FakeModem
from meteragent.protocol import (
    Ack,
    CounterReservation,
    DeviceInfo,
    DisplayCode,
    KeyState,
    MemoryCounterStore,
    ReplayWindow,
    Report,
    decode_uplink,
    derive_keys,
    encode_downlink,
)
from meteragent.protocol import pdu as sms
from meteragent.scheduler import SendSchedule
from meteragent.store import Store
from meteragent.transport import ModemTransport

UTILITY = "+447700900123"
METER = "MTR0000000000000000000042"
ROOT = bytes(range(100, 132))
KEY_ID = 3
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
H0 = T0 // 3600
SIGNING_PUBLIC = bytes(range(32))


@dataclass
class FakeServer:
    """The server side, as docs/protocol.md section 14.2 describes it."""

    clock: FakeClock
    fake: FakeModem | None = None
    skew: int = 0  # server_time = meter clock + skew
    drop_acks: int = 0  # answer nothing for this many batches (a lost ack)
    lose_readings: int = 0  # the next this many reports with readings never arrive (lost SMS)
    display_code: str | None = None
    keys: object = field(default_factory=lambda: derive_keys(ROOT, KEY_ID))
    window: ReplayWindow = field(default_factory=ReplayWindow)
    down: CounterReservation = field(
        default_factory=lambda: CounterReservation(MemoryCounterStore())
    )
    readings: dict[int, int] = field(default_factory=dict)
    ranges: list[tuple[int, int]] = field(default_factory=list)
    reports: list[tuple[int, Report]] = field(default_factory=list)
    device_info: list[DeviceInfo] = field(default_factory=list)
    acks: list[bytes] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def mark(self) -> int | None:
        if not self.ranges:
            return None
        ranges = sorted(self.ranges)
        mark = ranges[0][0] - 1
        for first, last in ranges:
            if first <= mark + 1:
                mark = max(mark, last)
        return mark

    def ack(self, answers: int, **kw) -> bytes:
        msg = Ack(answers, self.mark(), int(self.clock.time()) + self.skew, **kw)
        return encode_downlink(msg, keys=self.keys, counter=self.down.next())

    def on_submit(self, tpdu: bytes) -> None:
        try:
            submit = sms.decode_submit(tpdu)
            assert submit.destination.number == UTILITY
            opened = decode_uplink(
                submit.data, lambda kid: KeyState(self.keys, self.window) if kid == KEY_ID else None
            )
            self.window = opened.window
            msg = opened.message
            if isinstance(msg, DeviceInfo):
                self.device_info.append(msg)
                return
            assert isinstance(msg, Report)
            if self.lose_readings and msg.readings:
                self.lose_readings -= 1
                return
            self.reports.append((opened.header.counter, msg))
            for r in msg.readings:
                self.readings[r.hour] = r.wh
            if msg.readings:
                self.ranges.append((msg.readings[0].hour, msg.readings[-1].hour))
            if msg.remaining == 0:
                if self.drop_acks:
                    self.drop_acks -= 1
                    return
                code = DisplayCode(self.display_code) if self.display_code else None
                frame = self.ack(opened.header.counter, display_code=code)
                self.acks.append(frame)
                assert self.fake is not None
                self.fake.inject_sms(UTILITY, frame)
        except Exception as exc:  # surfaced by the test, not lost in the modem thread
            self.errors.append(exc)


@dataclass
class Rig:
    agent: Agent
    server: FakeServer
    fake: FakeModem
    clock: FakeClock
    store: Store
    transport: ModemTransport

    def pump(self, seconds: float = 60) -> str | None:
        """Wait (virtually) for one incoming SMS and hand it to the agent."""
        incoming = self.transport.wait(self.clock.monotonic() + seconds)
        return None if incoming is None else self.agent.handle_message(*incoming)


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock(T0 + 5, settle=0.05)
    server = FakeServer(clock)
    fake = FakeModem(on_submit=server.on_submit)
    server.fake = fake
    fake.start()
    modem = GsmModem(serial.Serial(fake.path, timeout=0), command_timeout=2, send_timeout=2)
    transport = ModemTransport(modem, UTILITY, clock)
    transport.open()
    store = Store(tmp_path / "meter.db")
    agent = Agent(
        store=store,
        keys=DeviceKeys(METER, KEY_ID, ROOT, UTILITY),
        transport=transport,
        energy=SimulatedEnergySource(seed=42, start=T0, start_wh=1_000_000),
        clock=clock,
        signing_public=SIGNING_PUBLIC,
        config=AgentConfig(schedule=SendSchedule(6 * 60, 18 * 60, 0)),
    )
    yield Rig(agent, server, fake, clock, store, transport)
    transport.close()
    store.close()
    fake.stop()


def reports_of(server: FakeServer) -> list[Report]:
    return [r for _, r in server.reports]


def test_a_full_day_is_stored_sent_acked_and_marked(rig: Rig) -> None:
    # From 00:00:05 to just after the first send slot of the next day (06:00).
    rig.agent.run(until=rig.clock.monotonic() + 30 * 3600 - 5 + 60)
    assert not rig.server.errors
    stored = rig.store.readings()
    assert [r.hour for r in stored] == list(range(H0, H0 + 31))  # one per hour, no gap
    assert all(b.wh >= a.wh for a, b in itertools.pairwise(stored))
    # Sends at 06:00, 18:00, 06:00: one frame each (a day fits one SMS), plus DEVICE_INFO.
    assert len(rig.fake.sent) == 4
    assert [len(d.software_version) > 0 for d in rig.server.device_info] == [True]
    assert rig.server.device_info[0].signing_public == SIGNING_PUBLIC
    reports = reports_of(rig.server)
    assert [r.remaining for r in reports] == [0, 0, 0]
    # The first frame of every later batch starts with the last acknowledged reading.
    assert reports[0].readings[0].hour == H0
    assert reports[1].readings[0].hour == reports[0].readings[-1].hour
    assert reports[2].readings[0].hour == reports[1].readings[-1].hour
    assert rig.server.readings == {r.hour: r.wh for r in stored}
    # Acked and marked: everything up to the last send is acknowledged.
    assert rig.store.acknowledged_up_to() == H0 + 30
    assert rig.store.unacknowledged_readings() == []
    assert rig.agent.stats.acks == 3
    # The DEVICE_INFO was acknowledged with the batch and is not sent again.
    assert not rig.agent._device_info_due()
    # Events (the REBOOT at start) were reported and marked.
    assert rig.store.pending_events() == []
    assert rig.clock.steps == []  # server and meter agree on the time: no step
    assert rig.store.verify().ok


def test_a_lost_ack_leads_to_a_resend_with_the_unacknowledged_readings(rig: Rig) -> None:
    rig.server.drop_acks = 1
    rig.agent.run(until=rig.clock.monotonic() + 12 * 3600)  # through 06:00, to 12:00
    assert rig.store.acknowledged_up_to() is None
    first = reports_of(rig.server)[0]
    assert [r.hour for r in first.readings] == list(range(H0, H0 + 7))
    rig.agent.run(until=rig.clock.monotonic() + 7 * 3600)  # through 18:00
    assert not rig.server.errors
    second = reports_of(rig.server)[1]
    assert {r.hour for r in first.readings} <= {r.hour for r in second.readings}
    assert [r.hour for r in second.readings] == list(range(H0, H0 + 19))
    assert rig.store.acknowledged_up_to() == H0 + 18
    assert rig.store.unacknowledged_readings()[0].hour == H0 + 19


@pytest.mark.parametrize("pending_events", [0, 120], ids=["readings", "events-first"])
def test_a_new_meter_with_a_backlog_is_never_acked_for_hours_the_server_lacks(
    rig: Rig, pending_events: int
) -> None:
    """Before its first ack a meter sends one frame with readings, from its oldest: the server
    starts the meter's mark at the first hour it gets, so if that frame were lost and a later
    frame of the same batch arrived, the ack would cover hours the server never stored. (Frames
    of events alone may go before it: they do not move the mark.)"""
    backlog = range(H0 - 150, H0)  # installed long before its first report: three frames' worth
    for i, hour in enumerate(backlog):
        rig.store.record_reading(hour, 1_000_000 + 400 * i)
    for i in range(pending_events):
        rig.store.add_event(EV_REBOOT, backlog[i], i)

    def server_has_every_acknowledged_hour() -> bool:
        acked = rig.store.acknowledged_up_to()
        return acked is None or all(
            hour in rig.server.readings for hour in backlog if hour <= acked
        )

    def frames_with_readings() -> list[Report]:
        return [r for r in reports_of(rig.server) if r.readings]

    rig.server.lose_readings = 1
    rig.agent.send_now()  # its first batch; the frame with readings is lost
    rig.pump(5)
    assert server_has_every_acknowledged_hour()
    assert rig.store.acknowledged_up_to() is None  # no readings arrived, none acknowledged
    assert any(not r.readings for r in reports_of(rig.server)) == bool(pending_events)
    rig.agent.send_now()
    assert rig.pump() == "ack"
    [first] = frames_with_readings()
    assert first.remaining == 0 and first.readings[0].hour == backlog[0]
    assert rig.store.acknowledged_up_to() == first.readings[-1].hour
    assert server_has_every_acknowledged_hour()
    rig.agent.send_now()  # acknowledged now: the rest in one batch of several frames
    assert rig.pump() == "ack"
    assert len(frames_with_readings()) > 2
    assert rig.store.acknowledged_up_to() == backlog[-1]
    assert server_has_every_acknowledged_hour() and not rig.server.errors


def test_the_ack_can_show_the_claim_code_and_steps_a_slow_clock(rig: Rig) -> None:
    rig.server.display_code = "004711"
    rig.server.skew = 120  # the meter is two minutes slow
    rig.agent.run(until=rig.clock.monotonic() + 7 * 3600)
    assert rig.agent.display.code == "004711"  # type: ignore[attr-defined]
    assert rig.clock.steps == [120]


def _wall_and_state(rig: Rig) -> tuple:
    return (
        rig.clock.time(),
        rig.clock.steps[:],
        rig.store.acknowledged_up_to(),
        rig.store.head(),
        rig.agent.window,
    )


def test_forged_replayed_and_stale_acks_change_nothing(rig: Rig) -> None:
    rig.server.drop_acks = 1  # we deliver the acks by hand
    rig.agent.run(until=rig.clock.monotonic() + 6 * 3600 + 60)  # the 06:00 send
    rig.clock.settle = 0.5  # SMS injected from this thread: give +CMTI time to arrive
    counter, report = rig.server.reports[-1]
    last_hour = report.readings[-1].hour
    rig.server.ranges.append((H0, last_hour))
    rig.server.skew = 200
    genuine = rig.server.ack(counter)  # would mark H0+6 and step the clock by 200 s
    before = _wall_and_state(rig)

    # Forged: the right number, a well-formed frame, but under another key.
    forged = encode_downlink(
        Ack(counter, last_hour, int(rig.clock.time()) + 200),
        keys=derive_keys(bytes(32), KEY_ID),
        counter=1,
    )
    rig.fake.inject_sms(UTILITY, forged)
    assert rig.pump() == "AuthenticationFailed"
    tampered = bytearray(genuine)
    tampered[40] ^= 1
    rig.fake.inject_sms(UTILITY, bytes(tampered))
    assert rig.pump() == "AuthenticationFailed"
    rig.fake.inject_sms(UTILITY, genuine[:50])  # truncated
    assert rig.pump() == "Malformed"
    rig.fake.inject_sms(UTILITY, os.urandom(140))
    assert rig.pump() in ("AuthenticationFailed", "BadVersion", "Malformed", "UnknownKeyId")
    # The genuine ack from a stranger's number never reaches the agent.
    rig.fake.inject_sms("+447700900999", genuine)
    assert rig.pump(seconds=1) is None
    assert rig.transport.rejected == 1
    assert _wall_and_state(rig)[1:] == before[1:]

    # The genuine ack works once...
    rig.fake.inject_sms(UTILITY, genuine)
    assert rig.pump() == "ack"
    assert rig.store.acknowledged_up_to() == last_hour
    assert len(rig.clock.steps) == 1 and 190 <= rig.clock.steps[0] <= 200
    after = _wall_and_state(rig)
    # ...and its replay changes nothing: not the clock, not the ack state, no store write.
    rig.fake.inject_sms(UTILITY, genuine)
    assert rig.pump() == "Replay"
    assert _wall_and_state(rig)[1:] == after[1:]

    # Stale: a genuine ack far older than the newest one seen.
    rig.server.down = CounterReservation(MemoryCounterStore(500))
    newer = rig.server.ack(counter)
    rig.fake.inject_sms(UTILITY, newer)
    assert rig.pump() == "ack"
    rig.server.down = CounterReservation(MemoryCounterStore(100))
    rig.server.skew = -250
    old = rig.server.ack(counter)
    state = _wall_and_state(rig)
    rig.fake.inject_sms(UTILITY, old)
    assert rig.pump() == "Stale"
    assert _wall_and_state(rig)[1:] == state[1:]
    assert rig.agent.stats.rejected == {
        "AuthenticationFailed": rig.agent.stats.rejected["AuthenticationFailed"],
        "Malformed": rig.agent.stats.rejected.get("Malformed", 0),
        "Replay": 1,
        "Stale": 1,
    } | {k: v for k, v in rig.agent.stats.rejected.items() if k in ("BadVersion", "UnknownKeyId")}


def test_the_replay_window_survives_a_restart(rig: Rig, tmp_path) -> None:
    rig.server.drop_acks = 1
    rig.agent.run(until=rig.clock.monotonic() + 6 * 3600 + 60)
    rig.clock.settle = 0.5
    counter, _ = rig.server.reports[-1]
    genuine = rig.server.ack(counter)
    rig.fake.inject_sms(UTILITY, genuine)
    assert rig.pump() == "ack"
    restarted = Agent(
        store=rig.store,
        keys=DeviceKeys(METER, KEY_ID, ROOT, UTILITY),
        transport=rig.transport,
        energy=SimulatedEnergySource(seed=42, start=rig.clock.time(), start_wh=2_000_000),
        clock=rig.clock,
    )
    rig.fake.inject_sms(UTILITY, genuine)
    incoming = rig.transport.wait(rig.clock.monotonic() + 60)
    assert incoming is not None
    assert restarted.handle_message(*incoming) == "Replay"
    # Counters continue above everything reserved before the restart.
    assert restarted.up.peek > counter


def test_a_failed_send_is_retried_at_the_next_slot(rig: Rig) -> None:
    rig.fake.cms_error_on_send = 500
    rig.agent.run(until=rig.clock.monotonic() + 7 * 3600)
    assert rig.agent.stats.send_failures == 1 and rig.fake.sent == []
    rig.fake.cms_error_on_send = None
    rig.agent.run(until=rig.clock.monotonic() + 12 * 3600)
    assert not rig.server.errors
    assert rig.store.acknowledged_up_to() == H0 + 18


def test_stop_ends_the_loop(rig: Rig) -> None:
    rig.agent.stop()
    rig.agent.run()  # returns at once: stop() was requested before
    assert rig.fake.sent == []


def test_an_older_copy_of_the_store_never_rewinds_the_uplink_counter(rig: Rig, tmp_path) -> None:
    """Offline overwrite with an older store file: the counter floor follows the clock, so no
    counter (no AES-GCM nonce) is used twice under the same key."""
    import shutil

    from meteragent.uplink import COUNTER_FLOOR_SECONDS

    rig.agent.run(until=rig.clock.monotonic() + 7 * 3600)  # through the 06:00 send
    used_before = {counter for counter, _ in rig.server.reports}
    snapshot = tmp_path / "old.db"
    shutil.copy(rig.store.path, snapshot)  # what an attacker saved
    rig.agent.run(until=rig.clock.monotonic() + 12 * 3600)  # through the 18:00 send
    used_before |= {counter for counter, _ in rig.server.reports}
    rig.store.close()
    shutil.copy(snapshot, rig.store.path)  # the older copy is put back
    old = Store(rig.store.path)
    agent = Agent(
        store=old,
        keys=DeviceKeys(METER, KEY_ID, ROOT, UTILITY),
        transport=rig.transport,
        energy=SimulatedEnergySource(seed=42, start=T0, start_wh=1_000_000),
        clock=rig.clock,
        signing_public=SIGNING_PUBLIC,
        config=AgentConfig(schedule=SendSchedule(6 * 60, 18 * 60, 0)),
    )
    counters = agent.send_now()
    assert counters and not set(counters) & used_before
    assert min(counters) >= int(rig.clock.time()) // COUNTER_FLOOR_SECONDS
    old.close()
