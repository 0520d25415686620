"""Over-the-air rekey on the meter (docs/protocol.md section 10, docs/meteragent.md "Rekey").

The real agent, modem driver, fake modem over a pty and a test clock, as in ``test_agent.py``.
The test plays the server as ``devices/services.py`` and ``smsgateway`` do: REKEY_INIT sealed
under the active key; on REKEY_ACCEPT the new key is stored as pending and every downlink is
sealed under it from then on; the first uplink under the new key makes it active.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import serial

from meteragent.agent import Agent, AgentConfig
from meteragent.clock import FakeClock
from meteragent.energy import SimulatedEnergySource
from meteragent.keyfile import DeviceKeys, KeyFileError, load_keys, save_keys
from meteragent.modem import GsmModem
from meteragent.modem.fake import FakeModem
from meteragent.protocol import (
    Ack,
    CounterReservation,
    DeviceInfo,
    KeyState,
    MemoryCounterStore,
    Message,
    RekeyAccept,
    RekeyInit,
    ReplayWindow,
    Report,
    SessionKeys,
    decode_uplink,
    derive_keys,
    encode_downlink,
)
from meteragent.protocol import pdu as sms
from meteragent.protocol.rekey import ServerRekey
from meteragent.scheduler import SendSchedule
from meteragent.store import Store
from meteragent.transport import ModemTransport

UTILITY = "+447700900123"
METER = "MTR0000000000000000000042"
ROOT = bytes(range(100, 132))
KEY_ID = 3
NEW_ID = 4
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
H0 = T0 // 3600
SIGNING_PUBLIC = bytes(range(32))


class PowerCut(BaseException):
    """Not an error the agent handles: the process just ends here."""


@dataclass
class ServerKey:
    keys: SessionKeys
    window: ReplayWindow = field(default_factory=ReplayWindow)
    down: CounterReservation = field(
        default_factory=lambda: CounterReservation(MemoryCounterStore())
    )


@dataclass
class RekeyServer:
    clock: FakeClock
    fake: FakeModem | None = None
    keys: dict[int, ServerKey] = field(
        default_factory=lambda: {KEY_ID: ServerKey(derive_keys(ROOT, KEY_ID))}
    )
    active: int = KEY_ID
    pending: int | None = None
    retired: dict[int, ServerKey] = field(default_factory=dict)
    exchange: ServerRekey | None = None
    new_root: bytes | None = None
    drop_accepts: int = 0  # REKEY_ACCEPTs lost on the way
    drop_acks: int = 0  # acks lost on the way
    ranges: list[tuple[int, int]] = field(default_factory=list)
    uplinks: list[tuple[int, int, Message]] = field(default_factory=list)
    lost: list[tuple[int, int, Message]] = field(default_factory=list)  # dropped ACCEPTs
    errors: list[Exception] = field(default_factory=list)

    # -- as the portal does it

    def downlink_key(self) -> int:
        return self.pending if self.pending is not None else self.active

    def seal(self, message: Message, key_id: int | None = None, counter: int | None = None):
        kid = self.downlink_key() if key_id is None else key_id
        key = self.keys.get(kid) or self.retired[kid]
        return encode_downlink(message, keys=key.keys, counter=counter or key.down.next())

    def mark(self) -> int | None:
        mark = None
        for first, last in sorted(self.ranges):
            if mark is None:
                mark = first - 1
            if first <= mark + 1:
                mark = max(mark, last)
        return mark

    def ack(self, answers: int, key_id: int | None = None) -> bytes:
        return self.seal(Ack(answers, self.mark(), int(self.clock.time())), key_id)

    def start_rekey(self, new_key_id: int = NEW_ID) -> None:
        self.exchange = ServerRekey(self.keys[self.active].keys, new_key_id)

    def init_frame(self) -> bytes:
        """The REKEY_INIT (the same one each time) in a new frame under the active key."""
        assert self.exchange is not None
        return self.seal(self.exchange.init_message, self.active)

    def _lookup(self, kid: int) -> KeyState | None:
        if kid not in (self.active, self.pending):
            return None
        return KeyState(self.keys[kid].keys, self.keys[kid].window)

    def on_submit(self, tpdu: bytes) -> None:
        try:
            submit = sms.decode_submit(tpdu)
            opened = decode_uplink(submit.data, self._lookup)
            kid, counter, msg = opened.header.key_id, opened.header.counter, opened.message
            self.keys[kid].window = opened.window
            self.uplinks.append((kid, counter, msg))
            if kid == self.pending:  # first uplink under the new key: it becomes active
                self.retired[self.active] = self.keys.pop(self.active)
                self.active, self.pending = kid, None
            answer = False
            if isinstance(msg, RekeyAccept):
                if self.drop_accepts:
                    self.drop_accepts -= 1
                    self.lost.append(self.uplinks.pop())
                    return
                if self.exchange is not None and msg.new_key_id == self.exchange.new_key_id:
                    self.new_root = self.exchange.finish(msg)
                    self.keys[msg.new_key_id] = ServerKey(
                        derive_keys(self.new_root, msg.new_key_id)
                    )
                    self.pending, self.exchange = msg.new_key_id, None
                answer = self.pending == msg.new_key_id  # a repeat is answered again
            elif isinstance(msg, Report):
                if msg.readings:
                    self.ranges.append((msg.readings[0].hour, msg.readings[-1].hour))
                answer = msg.remaining == 0
            else:
                assert isinstance(msg, DeviceInfo)
            if answer:
                if self.drop_acks:
                    self.drop_acks -= 1
                    return
                assert self.fake is not None
                self.fake.inject_sms(UTILITY, self.ack(counter))
        except Exception as exc:  # surfaced by the test, not lost in the modem thread
            self.errors.append(exc)

    def accepts(self) -> list[tuple[int, int, RekeyAccept]]:
        return [(k, c, m) for k, c, m in self.uplinks if isinstance(m, RekeyAccept)]

    def reports(self) -> list[tuple[int, int, Report]]:
        return [(k, c, m) for k, c, m in self.uplinks if isinstance(m, Report)]


@dataclass
class Rig:
    agent: Agent
    server: RekeyServer
    fake: FakeModem
    clock: FakeClock
    store: Store
    transport: ModemTransport
    data: Path

    @property
    def keys_path(self) -> Path:
        return self.data / "keys.json"

    def run_hours(self, hours: float) -> None:
        self.agent.run(until=self.clock.monotonic() + hours * 3600)

    def pump(self, seconds: float = 60) -> str | None:
        incoming = self.transport.wait(self.clock.monotonic() + seconds)
        return None if incoming is None else self.agent.handle_message(*incoming)

    def deliver(self, frame: bytes) -> str | None:
        assert self.fake.inject_sms(UTILITY, frame)
        return self.pump()

    def restart(self) -> Agent:
        """Power cut: memory is gone; the store and the key file are what is left."""
        self.store.close()
        self.store = Store(self.data / "meter.db")
        self.agent = make_agent(self.store, load_keys(self.keys_path), self.transport, self.clock)
        return self.agent


def make_agent(store: Store, keys: DeviceKeys, transport, clock: FakeClock) -> Agent:
    return Agent(
        store=store,
        keys=keys,
        transport=transport,
        energy=SimulatedEnergySource(seed=42, start=T0, start_wh=1_000_000),
        clock=clock,
        signing_public=SIGNING_PUBLIC,
        config=AgentConfig(schedule=SendSchedule(6 * 60, 18 * 60, 0)),
    )


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock(T0 + 5, settle=0.05)
    server = RekeyServer(clock)
    fake = FakeModem(on_submit=server.on_submit)
    server.fake = fake
    fake.start()
    modem = GsmModem(serial.Serial(fake.path, timeout=0), command_timeout=2, send_timeout=2)
    transport = ModemTransport(modem, UTILITY, clock)
    transport.open()
    save_keys(tmp_path / "keys.json", DeviceKeys(METER, KEY_ID, ROOT, UTILITY))
    store = Store(tmp_path / "meter.db")
    agent = make_agent(store, load_keys(tmp_path / "keys.json"), transport, clock)
    r = Rig(agent, server, fake, clock, store, transport, tmp_path)
    yield r
    transport.close()
    r.store.close()
    fake.stop()
    assert not server.errors


def first_slot(rig: Rig) -> None:
    """Run to just after the 06:00 send (acked under the provisioned key), then let injected
    SMS settle before time jumps on."""
    rig.run_hours(6 + 1 / 60)
    assert rig.store.acknowledged_up_to() == H0 + 6
    rig.clock.settle = 0.5


def key_file(rig: Rig) -> dict:
    return json.loads(rig.keys_path.read_text())


def assert_switched(rig: Rig) -> None:
    """The meter holds only the new key, the one the server derived."""
    keys = load_keys(rig.keys_path)
    assert (keys.key_id, keys.pending_rekey) == (NEW_ID, None)
    assert keys.root_key == rig.server.new_root == rig.agent.keys.root_key
    assert rig.agent.keys.key_id == NEW_ID and rig.agent.pending_rekey is None
    text = rig.keys_path.read_text()
    assert base64.b64encode(ROOT).decode() not in text  # the old root key is gone
    assert stat.S_IMODE(rig.keys_path.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------------- scenarios


def test_full_rotation(rig: Rig) -> None:
    first_slot(rig)
    report_counter = rig.server.reports()[-1][1]
    rig.server.start_rekey()
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"

    # Persisted before the ACCEPT went out: key file (0600) with the pending rekey.
    pending = load_keys(rig.keys_path).pending_rekey
    assert pending is not None and pending.new_key_id == NEW_ID
    assert stat.S_IMODE(rig.keys_path.stat().st_mode) == 0o600
    assert "private" not in json.dumps(key_file(rig)["pending_rekey"])
    assert rig.agent.status()["pending_key_id"] == NEW_ID
    # The ACCEPT went under the current key with the next uplink counter.
    [(kid, counter, accept)] = rig.server.accepts()
    assert (kid, accept) == (KEY_ID, pending.accept)
    assert counter > report_counter

    # The server answers under the new key; the first such frame completes the switch.
    assert rig.pump() == "ack"
    assert_switched(rig)

    # Every uplink from now on is under the new key, its counters starting again at 1.
    rig.run_hours(12)  # through 18:00
    kid, counter, report = rig.server.reports()[-1]
    # Under the new key, counters start again (from the clock floor, see agent._uplink_counter).
    assert kid == NEW_ID and counter >= 1
    assert rig.server.active == NEW_ID and KEY_ID in rig.server.retired
    assert rig.store.acknowledged_up_to() == H0 + 18  # acked under the new key
    assert report.readings[0].hour == H0 + 6

    # A late frame under the old key is rejected: the meter no longer knows that key id.
    head, window = rig.store.head(), rig.agent.window
    late = rig.server.seal(Ack(counter, H0 + 30, int(rig.clock.time())), KEY_ID)
    assert rig.deliver(late) == "UnknownKeyId"
    assert (rig.store.head(), rig.agent.window) == (head, window)
    assert rig.store.acknowledged_up_to() == H0 + 18


def test_lost_init_is_sent_again_and_answered(rig: Rig) -> None:
    first_slot(rig)
    rig.server.start_rekey()
    lost = rig.server.init_frame()  # never delivered
    rig.run_hours(12)  # the 18:00 report goes and is acked under the old key as usual
    assert rig.server.reports()[-1][0] == KEY_ID
    assert rig.store.acknowledged_up_to() == H0 + 18
    assert rig.agent.pending_rekey is None and rig.server.accepts() == []

    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    assert rig.pump() == "ack"
    assert_switched(rig)
    # The lost INIT turning up late is under a key the meter no longer holds.
    assert rig.deliver(lost) == "UnknownKeyId"
    assert load_keys(rig.keys_path).key_id == NEW_ID


def test_lost_accept_same_init_same_accept(rig: Rig) -> None:
    first_slot(rig)
    rig.server.start_rekey()
    rig.server.drop_accepts = 1
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    assert rig.pump(seconds=5) is None  # no answer: the server never saw the ACCEPT
    pending = rig.agent.pending_rekey
    assert pending is not None and rig.agent.keys.key_id == KEY_ID

    # The meter keeps working under the old key; the server acks under it.
    rig.run_hours(12)
    assert rig.server.reports()[-1][0] == KEY_ID
    assert rig.store.acknowledged_up_to() == H0 + 18
    assert rig.agent.pending_rekey == pending

    # The server sends the same INIT again; the meter sends the same ACCEPT again.
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    [(kid, counter, accept)] = rig.server.accepts()
    assert (kid, accept) == (KEY_ID, pending.accept)
    assert counter > rig.server.reports()[-1][1]  # a new frame, not a byte-for-byte copy
    assert rig.pump() == "ack"
    assert_switched(rig)  # both derived the same root key


def test_lost_first_new_key_ack(rig: Rig) -> None:
    first_slot(rig)
    rig.server.start_rekey()
    rig.server.drop_acks = 1
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    assert rig.pump(seconds=5) is None  # the ack under the new key was lost
    assert rig.server.pending == NEW_ID
    assert rig.agent.keys.key_id == KEY_ID and rig.agent.pending_rekey is not None

    # The meter still sends under the old key (the server accepts it) and both keys verify
    # downlink; the ack to this report comes under the new key and completes the switch.
    sent = len(rig.server.uplinks)
    rig.run_hours(12)
    assert [k for k, _, _ in rig.server.uplinks[sent:]] == [KEY_ID]
    assert_switched(rig)
    assert rig.store.acknowledged_up_to() == H0 + 18
    rig.run_hours(12)
    assert rig.server.reports()[-1][0] == NEW_ID
    assert rig.server.active == NEW_ID


def test_power_cut_between_persisting_and_sending(rig: Rig, monkeypatch) -> None:
    first_slot(rig)
    rig.server.start_rekey()

    def cut(*_args: object) -> None:
        raise PowerCut

    monkeypatch.setattr(rig.transport, "send", cut)
    with pytest.raises(PowerCut):
        rig.deliver(rig.server.init_frame())
    monkeypatch.undo()
    persisted = load_keys(rig.keys_path).pending_rekey
    assert persisted is not None and rig.server.accepts() == []

    # Back up: nothing is sent until the server, having no answer, repeats the INIT.
    agent = rig.restart()
    assert agent.pending_rekey == persisted and agent.keys.key_id == KEY_ID
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    [(_, _, accept)] = rig.server.accepts()
    assert accept == persisted.accept  # the same answer: no second key pair was made

    # Power cut after the ACCEPT went out: the new-key ack completes the restarted agent.
    agent = rig.restart()
    assert agent.pending_rekey == persisted
    assert rig.pump() == "ack"
    assert_switched(rig)
    frame = rig.server.ack(rig.server.accepts()[0][1])

    # And after the switch a restart comes up on the new key, window and counters intact.
    assert rig.deliver(frame) == "ack"
    agent = rig.restart()
    assert agent.keys.key_id == NEW_ID and agent.pending_rekey is None
    assert rig.deliver(frame) == "Replay"
    agent.send_now()
    assert rig.server.reports()[-1][0] == NEW_ID


def test_power_cut_while_switching(rig: Rig, monkeypatch) -> None:
    first_slot(rig)
    rig.server.start_rekey()
    rig.server.drop_acks = 1
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    frame = rig.server.ack(rig.server.accepts()[0][1])  # the first frame under the new key

    def cut(*_args: object) -> None:
        raise PowerCut

    monkeypatch.setattr("meteragent.agent.save_keys", cut)
    with pytest.raises(PowerCut):
        rig.deliver(frame)
    monkeypatch.undo()
    # The new key's window was stored, the key file not rewritten: still pending.
    agent = rig.restart()
    assert agent.keys.key_id == KEY_ID and agent.pending_rekey is not None
    assert rig.deliver(frame) == "Replay"
    assert agent.keys.key_id == KEY_ID
    assert rig.deliver(rig.server.ack(rig.server.accepts()[0][1])) == "ack"
    assert_switched(rig)


def test_a_new_exchange_replaces_a_pending_one(rig: Rig) -> None:
    """The server lost its exchange and starts another: the meter answers the new INIT."""
    first_slot(rig)
    rig.server.start_rekey()
    rig.server.drop_accepts = 1
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    first = rig.agent.pending_rekey
    rig.server.start_rekey(NEW_ID)  # same key id, another server key
    assert rig.deliver(rig.server.init_frame()) == "rekey_accept"
    second = rig.agent.pending_rekey
    assert first is not None and second is not None
    assert second.server_public != first.server_public
    assert second.accept.meter_public != first.accept.meter_public
    assert load_keys(rig.keys_path).pending_rekey == second
    assert rig.pump() == "ack"
    assert_switched(rig)


def _state(rig: Rig) -> tuple:
    return (
        rig.keys_path.read_bytes(),
        rig.store.head(),
        rig.agent.keys,
        rig.agent.pending_rekey,
        rig.agent.window,
        rig.agent.up.peek,
        len(rig.fake.sent),
    )


def test_bad_rekey_inits_change_nothing(rig: Rig) -> None:
    first_slot(rig)
    server_public = ServerRekey(rig.server.keys[KEY_ID].keys, NEW_ID).server_public
    before = _state(rig)

    # To the key id already in use, although genuine.
    assert rig.deliver(rig.server.seal(RekeyInit(KEY_ID, server_public), KEY_ID)) == "Malformed"
    # A low-order server key (the X25519 result would be all zeros).
    assert rig.deliver(rig.server.seal(RekeyInit(NEW_ID, bytes(32)), KEY_ID)) == "Malformed"
    # Under a key id the meter does not hold.
    other = encode_downlink(
        RekeyInit(NEW_ID, server_public), keys=derive_keys(os.urandom(32), 9), counter=1
    )
    assert rig.deliver(other) == "UnknownKeyId"
    # Under the right key id, sealed by someone without the key.
    forged = encode_downlink(
        RekeyInit(NEW_ID, server_public), keys=derive_keys(os.urandom(32), KEY_ID), counter=50
    )
    assert rig.deliver(forged) == "AuthenticationFailed"
    assert _state(rig) == before

    # A genuine one is answered; once the switch is done, it is under a key that is gone.
    rig.server.start_rekey()
    genuine = rig.server.init_frame()
    assert rig.deliver(genuine) == "rekey_accept"
    assert rig.pump() == "ack"  # the server's answer under the new key: switched
    assert_switched(rig)
    after = _state(rig)
    assert rig.deliver(genuine) == "UnknownKeyId"  # the old key is gone after the switch
    assert _state(rig) == after


def test_replayed_and_stale_inits_while_pending_change_nothing(rig: Rig) -> None:
    first_slot(rig)
    rig.server.start_rekey()
    rig.server.drop_accepts = 2  # the server hears nothing: the meter stays pending
    genuine = rig.server.init_frame()
    rig.server.keys[KEY_ID].down = CounterReservation(MemoryCounterStore(200))
    assert rig.deliver(genuine) == "rekey_accept"
    pending = rig.agent.pending_rekey
    assert rig.deliver(rig.server.ack(1)) == "ack"  # the window moves on to 201
    before = _state(rig)
    assert rig.deliver(genuine) == "Stale"  # older than the window
    assert _state(rig) == before
    # A genuine repeat is answered with the same ACCEPT; replayed, it does nothing.
    latest = rig.server.init_frame()
    assert rig.deliver(latest) == "rekey_accept"
    before = _state(rig)
    assert rig.deliver(latest) == "Replay"
    assert _state(rig) == before
    assert rig.agent.pending_rekey == pending
    assert [m for _, _, m in rig.server.lost] == [pending.accept, pending.accept]
    assert rig.agent.stats.rejected == {"Stale": 1, "Replay": 1}


# ---------------------------------------------------------------------------------- key file


def test_key_file_round_trips_a_pending_rekey(tmp_path) -> None:
    from meteragent.protocol import meter_handle_init

    current = derive_keys(ROOT, KEY_ID)
    exchange = ServerRekey(current, NEW_ID)
    pending = meter_handle_init(current, exchange.init_message, 7)
    path = tmp_path / "keys.json"
    save_keys(path, DeviceKeys(METER, KEY_ID, ROOT, UTILITY, pending_rekey=pending))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_keys(path)
    assert loaded.pending_rekey == pending
    assert loaded.pending_rekey.new_root == exchange.finish(pending.accept)
    assert "new_root" not in repr(loaded) and "pending" not in repr(loaded)

    body = json.loads(path.read_text())
    body["pending_rekey"]["new_key_id"] = KEY_ID  # a rekey to the key in use
    path.write_text(json.dumps(body))
    with pytest.raises(KeyFileError):
        load_keys(path)
    body["pending_rekey"]["new_key_id"] = NEW_ID
    body["pending_rekey"]["new_root"] = base64.b64encode(bytes(16)).decode()
    path.write_text(json.dumps(body))
    with pytest.raises(KeyFileError):
        load_keys(path)
    # A file written before rekeys existed has no pending rekey.
    del body["pending_rekey"]
    path.write_text(json.dumps(body))
    assert load_keys(path).pending_rekey is None
