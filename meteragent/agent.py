"""The meter agent: hourly readings, two sends a day, acks, clock rules, commands.

One thread, one loop: ``tick()`` does whatever is due at the current time and returns the
next deadline; the transport's ``wait(deadline)`` sleeps until then or until an SMS arrives
(never busy-polling); ``handle_message`` acts on it. Every time source is the injected
:class:`~meteragent.clock.Clock`, so tests run a day in seconds.

Protocol rules applied here (docs/protocol.md, docs/meteragent.md):

* A reading for UTC hour ``H`` is the cumulative energy at ``H*3600`` (the start of the hour),
  taken at the top of the hour; if the agent wakes more than ``reading_grace_seconds`` late
  the hour is left out (a gap the server sees), never stamped with a wrong value.
* A batch is ``[last acknowledged reading] + unacknowledged readings`` (the server extends its
  high-water mark over each frame's range, so it can move past hours the meter never
  recorded), at most 16 frames, plus pending events; before the first ack, only up to the
  first frame with readings (protocol 6.2). Nothing new: a heartbeat. Every send
  slot sends, so the traffic pattern never depends on consumption (S6, S7).
* No ack: nothing happens until the next send slot, which resends everything unacknowledged
  with new counters (a frame is never retransmitted byte for byte).
* Downlink frames: only from the utility's number, authenticated and replay-checked by
  ``decode_downlink``; the new replay window is stored before the ack has any effect; a
  rejected frame changes nothing. The clock moves only under ``decide_clock``.
* Over-the-air rekey (docs/protocol.md section 10, docs/meteragent.md "Rekey"): a REKEY_INIT
  under the current key is answered with ``meter_handle_init``; the pending rekey is written
  to the key file (atomic, 0600) *before* the REKEY_ACCEPT goes out under the current key.
  Downlink is accepted under the current and the pending key id; the first authentic downlink
  frame under the pending id makes it current (key file rewritten without the old root key),
  with fresh counters and replay window. Until then every uplink stays under the old key.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from meteragent.clock import Clock
from meteragent.config import Config
from meteragent.display import Display, LogDisplay, LogLed, PulseCounter
from meteragent.energy.base import EnergyResult, EnergySource
from meteragent.keyfile import DeviceKeys, save_keys
from meteragent.protocol import (
    Ack,
    ClockAction,
    DeviceInfo,
    Event,
    EventKind,
    KeyState,
    MessageType,
    Opened,
    PendingRekey,
    ProtocolError,
    Reading,
    RekeyAccept,
    ReplayWindow,
    Report,
    build_reports,
    decide_clock,
    decode_downlink,
    derive_keys,
    encode_uplink,
    meter_handle_init,
)
from meteragent.protocol.readings import ARG_MAX, ARG_MIN
from meteragent.scheduler import HOUR, SendSchedule, hour_index, next_every, next_hour, next_send
from meteragent.store import (
    EVENT_STORE_REPLACED,
    EVENT_STORE_TAMPER,
    META_DAMAGED_STORE,
    Store,
    StoreDamagedError,
    StoreError,
    damaged_copies,
)
from meteragent.transport import Transport, TransportError
from meteragent.uplink import ReserveFile, UplinkCounter

log = logging.getLogger(__name__)


def _software_version() -> str:
    try:
        return metadata.version("meteragent")
    except metadata.PackageNotFoundError:
        return "0.1.0"


SOFTWARE_VERSION = _software_version()
MAX_FRAMES_PER_BATCH = 16  # docs/protocol.md section 8: bounds SMS cost after an outage
LOOKBACK_HOURS = 24 * 62  # how far back the last acknowledged reading is looked for

# Store event types written by the agent itself.
EV_REBOOT = "reboot"
EV_CLOCK_STEP = "clock_step"
EV_SERVICE_ACTION = "service_action"

# TAMPER ``arg`` codes for metering-IC anomalies (docs/meteragent.md): sensor 16+ = the IC.
_TAMPER_CODES = {
    "energy_jump": 16,
    "energy_reverse": 17,
    "energy_chip_reset": 18,
    "energy_gap": 19,
    "energy_read_error": 20,
}


def _same(arg: int) -> int:
    return arg


# Store event type -> protocol event kind and its arg from the store event's arg. Metering-IC
# anomalies are TAMPER with the codes above.
_WIRE_EVENTS: dict[str, tuple[EventKind, Callable[[int], int]]] = {
    EV_REBOOT: (EventKind.REBOOT, _same),
    EV_CLOCK_STEP: (EventKind.CLOCK_STEP, _same),
    EV_SERVICE_ACTION: (EventKind.SERVICE_ACTION, _same),
    # One event per record that failed its MAC (1); 0 = the chain itself is broken.
    EVENT_STORE_TAMPER: (EventKind.STORE_INTEGRITY, lambda arg: 0 if arg == 0 else 1),
    # -1: the store could not be read at all; a fresh one was started.
    EVENT_STORE_REPLACED: (EventKind.STORE_INTEGRITY, lambda _arg: -1),
}


def to_wire_event(ev_type: str, hour: int, arg: int, sent_at: int) -> Event:
    """Map a store event to the protocol's event kinds (arg clamped to int32)."""
    at = min(hour * HOUR, sent_at - sent_at % 60)
    if ev_type in _WIRE_EVENTS:
        kind, wire_arg = _WIRE_EVENTS[ev_type]
        value = wire_arg(arg)
    else:
        kind, value = EventKind.TAMPER, _TAMPER_CODES.get(ev_type, 255)
    return Event(kind, at, max(ARG_MIN, min(ARG_MAX, value)))


@dataclass
class AgentConfig:
    schedule: SendSchedule = field(default_factory=SendSchedule)
    send_every_seconds: float | None = None  # demo only: send on this period instead
    reading_grace_seconds: int = 300
    max_frames_per_batch: int = MAX_FRAMES_PER_BATCH
    software_version: str = SOFTWARE_VERSION
    counter_block: int = 16


@dataclass
class _Batch:
    """What one send put on the air, kept in memory until its ack (or the next batch)."""

    counters: list[int]
    frame_events: list[list[int]]  # store event ids per frame
    frame_last_hour: list[int | None]
    device_info_counter: int | None = None


@dataclass
class AgentStats:
    frames_sent: int = 0
    send_failures: int = 0
    acks: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    readings_taken: int = 0
    hours_skipped: int = 0


class Agent:
    def __init__(
        self,
        *,
        store: Store,
        keys: DeviceKeys,
        transport: Transport,
        energy: EnergySource,
        clock: Clock,
        signing_public: bytes | None = None,
        display: Display | None = None,
        led: LogLed | None = None,
        config: AgentConfig | None = None,
        on_energy_state: Callable[[EnergySource, float], dict[str, str]] | None = None,
        keys_path: Path | None = None,
        counters_path: Path | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        # Where the key file lives (rewritten by a rekey); by default ``keys.json`` next to
        # the store, the layout of the data directory (config.Config).
        layout = Config(data_dir=store.path.parent)
        self.keys_path = keys_path or layout.keys_path
        self.reserve = ReserveFile(counters_path or layout.counters_path)
        self.transport = transport
        self.energy = energy
        self.clock = clock
        self.signing_public = signing_public
        self.display: Display = display or LogDisplay()
        self.pulses = PulseCounter(led or LogLed())
        self.config = config or AgentConfig()
        self.on_energy_state = on_energy_state
        self.session = derive_keys(keys.root_key, keys.key_id)
        self.up = self._uplink_counter(keys.key_id)
        self.window = self._load_window(keys.key_id)
        self._pending_session = None if keys.pending_rekey is None else keys.pending_rekey.new_keys
        self._pending_window = (
            None if keys.pending_rekey is None else self._load_window(keys.pending_rekey.new_key_id)
        )
        self.latest_sent: tuple[int, float] | None = None  # (counter, monotonic) this boot
        self.batches: dict[int, _Batch] = {}
        self.resend_from: int | None = None
        self.stats = AgentStats()
        self._stopping = False
        self._send_requested = False
        self._started = False
        self._next_reading = 0.0
        self._next_send = 0.0
        self._next_read_mono: float | None = None

    # ------------------------------------------------------------------ state

    @staticmethod
    def _window_name(key_id: int) -> str:
        return f"downlink_window:{key_id}"

    def _load_window(self, key_id: int) -> ReplayWindow:
        raw = self.store.get_meta(self._window_name(key_id))
        if raw is None:
            return ReplayWindow()
        highest, bitmap = (int(v) for v in raw.split(","))
        return ReplayWindow.from_tuple((highest, bitmap))

    def _store_window(self, key_id: int, window: ReplayWindow) -> None:
        self.store.put_meta(self._window_name(key_id), "{},{}".format(*window.to_tuple()))

    def _uplink_counter(self, key_id: int) -> UplinkCounter:
        return UplinkCounter(
            self.store, self.reserve, key_id, self.clock, self.config.counter_block
        )

    def _next_counter(self) -> int | None:
        """The next uplink counter, once the clock floor allows it (uplink.py): a burst right
        after a start is paced to one frame per period. SMS arriving meanwhile wait in the
        transport. None if the agent is stopping."""
        while (due := self.up.ready_at()) is not None and not self._stopping:
            # In steps of at most a second, so that a stop request is not kept waiting.
            deadline = self.clock.monotonic() + min(1.0, due - self.clock.time())
            time.sleep(self.clock.timeout_until(deadline))
            self.clock.waited_until(deadline)
        return None if self._stopping else self.up.next()  # durably reserved before use

    @property
    def pending_rekey(self) -> PendingRekey | None:
        return self.keys.pending_rekey

    def schedule(self) -> SendSchedule:
        raw = self.store.get_meta("schedule")
        if raw:
            try:
                return SendSchedule.from_text(raw)
            except ValueError:
                log.warning("stored schedule %r is invalid; using the default", raw)
        return self.config.schedule

    def send_minutes(self) -> tuple[int, int]:
        return self.schedule().minutes(self.keys.meter_number)

    def _compute_next_send(self, now: float) -> float:
        if self.config.send_every_seconds:
            return next_every(now, self.config.send_every_seconds)
        return next_send(now, self.send_minutes())

    def _read_interval(self) -> float | None:
        """The ADE7953 must be read at least every max_read_interval(); half of it leaves
        room for a late wake-up. None for sources that need no periodic reads."""
        fn = getattr(self.energy, "max_read_interval", None)
        return min(float(fn()) / 2, HOUR) if callable(fn) else None

    def _hour(self) -> int:
        return hour_index(self.clock.time())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start-up checks: store integrity (tampering queued as events), a REBOOT event,
        the display, and the first deadlines."""
        if self._started:
            return
        self._started = True
        now = self.clock.time()
        report = self.store.report_tampering(hour_index(now))
        if report.damaged:
            # Exit: the next start (store.open_store) keeps it aside and starts a fresh one.
            self.display.show_status("STORE ERROR")
            raise StoreDamagedError(report.chain_problem or "store damaged")
        if not report.ok:
            log.error("store verification failed: %d bad records, chain %s",
                      len(report.bad_records), report.chain_problem or "ok")  # fmt: skip
            self.display.show_status("STORE ERROR")
        damaged = self.store.get_meta(META_DAMAGED_STORE)
        if damaged is not None and damaged_copies(self.store.path):
            # Shown until the engineer has taken the damaged copy away.
            log.error("running on a fresh store; the damaged one is kept: %s", damaged)
            self.display.show_status("STORE ERROR")
        self.store.add_event(EV_REBOOT, hour_index(now), 0)
        latest = self.store.latest_reading()
        if latest is not None:
            self.display.show_reading(latest.wh)
            self.pulses.update(latest.wh)
        # The current hour is due now if it has no reading yet (checked in _take_reading).
        self._next_reading = now
        self._next_send = self._compute_next_send(now)
        interval = self._read_interval()
        self._next_read_mono = None if interval is None else self.clock.monotonic()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._stopping = True
        self.transport.interrupt()

    def request_send(self) -> None:
        """Send at once (service console ``send-now``, SIGUSR1)."""
        self._send_requested = True
        self.transport.interrupt()

    def run(self, until: float | None = None) -> None:
        """The main loop; ``until`` (monotonic) ends it, for tests and benchmarks."""
        self.start()
        while not self._stopping:
            deadline = self.tick()
            if until is not None:
                if self.clock.monotonic() >= until:
                    break
                deadline = min(deadline, until)
            incoming = self.transport.wait(deadline)
            if incoming is not None:
                self.handle_message(*incoming)

    def tick(self) -> float:
        """Do everything due now; return the next monotonic deadline."""
        now = self.clock.time()
        if now >= self._next_reading:
            self._take_reading(now)
            self._next_reading = next_hour(now)
        if self._next_read_mono is not None and self.clock.monotonic() >= self._next_read_mono:
            self._read_energy(now)
        if self._send_requested or now >= self._next_send:
            self._send_requested = False
            self.send_now()
            self._next_send = self._compute_next_send(self.clock.time())
        now = self.clock.time()
        mono = self.clock.monotonic()
        deadline = mono + max(0.0, min(self._next_reading, self._next_send) - now)
        if self._next_read_mono is not None:
            deadline = min(deadline, self._next_read_mono)
        return deadline

    # ------------------------------------------------------------------ readings

    def _read_energy(self, now: float) -> EnergyResult:
        result = self.energy.read(now)
        interval = self._read_interval()
        if interval is not None:
            self._next_read_mono = self.clock.monotonic() + interval
        for ev in result.events:
            log.warning("energy source event %s (arg %d)", ev.kind, ev.arg)
            self.store.add_event(ev.kind, hour_index(now), ev.arg)
        if result.wh is not None:
            self.pulses.update(result.wh)
        else:
            self.display.show_status("METER READ ERROR")
        return result

    def _take_reading(self, now: float) -> None:
        hour = hour_index(now)
        latest = self.store.latest_reading()
        if latest is not None and hour <= latest.hour:
            return  # already taken (restart within the hour, or the clock stepped back)
        late = now - hour * HOUR
        if late > self.config.reading_grace_seconds:
            # Stamping the value at now with hour H would misplace energy: leave a gap.
            self.stats.hours_skipped += 1
            log.warning("hour %d skipped: woke %d s after its start", hour, int(late))
            return
        result = self._read_energy(now)
        if result.wh is None:
            log.error("hour %d not recorded: %s", hour, result.error)
            return
        meta = self.on_energy_state(self.energy, now) if self.on_energy_state else {}
        try:
            if meta:
                self.store.record_reading_with_meta(hour, result.wh, meta)
            else:
                self.store.record_reading(hour, result.wh)
        except StoreError as exc:
            log.error("hour %d not recorded: %s", hour, exc)
            return
        self.stats.readings_taken += 1
        self.display.show_reading(result.wh)

    # ------------------------------------------------------------------ sending

    def _base_reading(self, acked: int) -> Reading | None:
        """The last acknowledged reading: the first frame's base (docs/protocol.md 8)."""
        for r in reversed(self.store.readings(max(0, acked - LOOKBACK_HOURS))):
            if r.hour <= acked:
                return Reading(r.hour, r.wh)
        return None

    def _device_info_due(self) -> bool:
        if self.signing_public is None:
            return False
        return self.store.get_meta("device_info_acked") != self.config.software_version

    def send_now(self) -> list[int]:
        """Send one batch (all unacknowledged readings, pending events; or a heartbeat).
        Returns the counters used."""
        sent_at = int(self.clock.time())
        acked = self.store.acknowledged_up_to()
        readings: list[Reading] = []
        if self.resend_from is not None:
            since = self.resend_from
        else:
            since = 0 if acked is None else acked + 1
            base = None if acked is None else self._base_reading(acked)
            if base is not None:
                readings.append(base)
        readings += [Reading(r.hour, r.wh) for r in self.store.readings(since)]
        pending = self.store.pending_events()[:255]
        events = [to_wire_event(e.type, e.hour, e.arg, sent_at) for e in pending]
        reports = build_reports(readings, events, sent_at=sent_at)
        cap = self.config.max_frames_per_batch
        if acked is None:
            # Never acknowledged: the server can only start this meter's mark at the first hour
            # it receives. If the first frame with readings of a batch were lost, the later ones
            # would start it too late and the ack would cover hours never stored. Until the
            # first ack, the batch ends with its first frame that holds readings (the oldest);
            # frames of events alone before it are harmless. The rest follows after that ack.
            with_readings = [n for n, report in enumerate(reports) if report.readings]
            if with_readings:
                cap = min(cap, with_readings[0] + 1)
        if len(reports) > cap:
            # Keep what the first ``cap`` frames hold; the rest goes at the next slot.
            kept = reports[:cap]
            n_readings = sum(len(r.readings) for r in kept)
            n_events = sum(len(r.events) for r in kept)
            readings, events, pending = readings[:n_readings], events[:n_events], pending[:n_events]
            reports = build_reports(readings, events, sent_at=sent_at)
        batch = _Batch([], [], [])
        frames: list[tuple[Any, list[int]]] = []
        if self._device_info_due():
            assert self.signing_public is not None
            frames.append((DeviceInfo(self.signing_public, self.config.software_version), []))
        offset = 0
        for report in reports:
            ids = [e.id for e in pending[offset : offset + len(report.events)]]
            offset += len(report.events)
            frames.append((report, ids))
        for message, ids in frames:
            counter = self._next_counter()
            if counter is None:
                break
            frame = encode_uplink(message, keys=self.session, counter=counter)
            try:
                self.transport.send(self.keys.utility_msisdn, frame)
            except TransportError as exc:
                self.stats.send_failures += 1
                log.error("send failed (counter %d): %s; retried at the next slot", counter, exc)
                self.display.show_status("SEND FAILED")
                break
            self.stats.frames_sent += 1
            self.latest_sent = (counter, self.clock.monotonic())
            if isinstance(message, DeviceInfo):
                batch.device_info_counter = counter
                continue
            assert isinstance(message, Report)
            batch.counters.append(counter)
            batch.frame_events.append(ids)
            batch.frame_last_hour.append(message.readings[-1].hour if message.readings else None)
        if batch.counters:
            # Only the newest batch can still be acked usefully; older ones were resent.
            self.batches = {batch.counters[-1]: batch}
            self.resend_from = None
        log.info("sent %d frames (%d readings, %d events)", len(frames), len(readings), len(events))
        return batch.counters

    # ------------------------------------------------------------------ receiving

    def _lookup(self, key_id: int) -> KeyState | None:
        if key_id == self.keys.key_id:
            return KeyState(self.session, self.window)
        pending = self.keys.pending_rekey
        if pending is not None and key_id == pending.new_key_id:
            assert self._pending_session is not None and self._pending_window is not None
            return KeyState(self._pending_session, self._pending_window)
        return None

    def _reject(self, reason: str, detail: str) -> str:
        self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
        log.warning("rejected downlink SMS: %s (%s)", reason, detail)
        return reason

    def handle_message(self, sender: str, payload: bytes) -> str:
        """Verify and act on one incoming SMS. Returns what happened ("ack", or the reason
        it was rejected); never raises on bad input."""
        if sender != self.keys.utility_msisdn:
            return self._reject("UnknownSender", sender)
        try:
            opened = decode_downlink(bytes(payload), self._lookup)
        except ProtocolError as exc:
            return self._reject(type(exc).__name__, str(exc))
        message = opened.message
        key_id = opened.header.key_id
        prepare = _DOWNLINK_HANDLERS.get(message.TYPE)
        if prepare is None:  # pragma: no cover - decode_downlink returns only downlink types
            return self._reject("Unexpected", type(message).__name__)
        # Worked out before anything is stored, so a frame that cannot be acted on changes
        # nothing at all.
        try:
            act = prepare(self, opened)
        except ProtocolError as exc:
            return self._reject(type(exc).__name__, f"{message.TYPE.name}: {exc}")
        if key_id != self.keys.key_id:
            # The first authentic frame under the pending key: the server holds it too.
            if not self._complete_rekey(opened):
                return "rekey_not_saved"
        else:
            # Stored before any effect: a crash after this point can lose the ack's effect
            # (the readings are simply resent) but can never let the same frame act twice.
            self._store_window(key_id, opened.window)
            self.window = opened.window
        return act()

    def _prepare_ack(self, opened: Opened) -> Callable[[], str]:
        def act() -> str:
            self._on_ack(opened.message)
            return "ack"

        return act

    def _prepare_rekey_init(self, opened: Opened) -> Callable[[], str]:
        """The answer to a REKEY_INIT is computed first: one that cannot be answered (to the
        key id it came under, a low-order public key) raises and changes nothing."""
        key_id = opened.header.key_id
        keys = self.session if key_id == self.keys.key_id else self._pending_session
        assert keys is not None
        earlier = self.keys.pending_rekey if key_id == self.keys.key_id else None
        answer = meter_handle_init(keys, opened.message, opened.header.counter, earlier)
        return lambda: self._answer_rekey(answer)

    # ------------------------------------------------------------------ rekey

    def _save_keys(self, keys: DeviceKeys) -> bool:
        try:
            save_keys(self.keys_path, keys)
        except OSError as exc:
            log.error("key file %s not written: %s", self.keys_path, exc)
            self.display.show_status("KEY FILE ERROR")
            return False
        self.keys = keys
        return True

    def _answer_rekey(self, pending: PendingRekey) -> str:
        """Persist the pending rekey durably, then send REKEY_ACCEPT under the current key."""
        if pending is not self.keys.pending_rekey:
            # A new exchange: its key id's downlink window starts empty (a window left by an
            # abandoned exchange for the same id must not make the new key's frames stale).
            self._store_window(pending.new_key_id, ReplayWindow())
            if not self._save_keys(dataclasses.replace(self.keys, pending_rekey=pending)):
                return "rekey_not_saved"  # nothing sent: the server sends the INIT again
            self._pending_session = pending.new_keys
            self._pending_window = ReplayWindow()
            log.info("rekey to key id %d pending; answering", pending.new_key_id)
        else:
            log.info("REKEY_INIT for key id %d repeated; same answer again", pending.new_key_id)
        return "rekey_accept" if self._send_accept(pending.accept) else "rekey_accept_failed"

    def _send_accept(self, accept: RekeyAccept) -> bool:
        counter = self._next_counter()
        if counter is None:
            return False
        frame = encode_uplink(accept, keys=self.session, counter=counter)
        try:
            self.transport.send(self.keys.utility_msisdn, frame)
        except TransportError as exc:
            self.stats.send_failures += 1
            log.error("REKEY_ACCEPT not sent (counter %d): %s; answered when the INIT "
                      "comes again", counter, exc)  # fmt: skip
            return False
        self.stats.frames_sent += 1
        self.latest_sent = (counter, self.clock.monotonic())
        return True

    def _complete_rekey(self, opened: Opened) -> bool:
        """Make the pending key current. The new key's window is stored first: after a crash
        before the key file is rewritten the rekey is still pending, and the same frame is a
        replay; the next frame under the new key completes it."""
        pending = self.keys.pending_rekey
        assert pending is not None and opened.header.key_id == pending.new_key_id
        self._store_window(pending.new_key_id, opened.window)
        self._pending_window = opened.window
        old_key_id = self.keys.key_id
        new = dataclasses.replace(
            self.keys, key_id=pending.new_key_id, root_key=pending.new_root, pending_rekey=None
        )
        if not self._save_keys(new):  # the old root key leaves the file here
            return False
        self.session = pending.new_keys
        self.window = opened.window
        self.up = self._uplink_counter(new.key_id)
        self._pending_session = self._pending_window = None
        log.warning("rekey complete: key id %d replaces %d", new.key_id, old_key_id)
        return True

    def _on_ack(self, ack: Ack) -> None:
        self.stats.acks += 1
        mark = ack.acked_through_hour
        if mark is not None:
            try:
                if self.store.mark_acknowledged(mark):
                    log.info("acknowledged through hour %d", mark)
            except StoreError as exc:
                log.warning("ack mark %d not applied: %s", mark, exc)
        batch = self.batches.get(ack.answers_counter)
        if batch is not None:
            done: list[int] = []
            for counter, ids, last in zip(
                batch.counters, batch.frame_events, batch.frame_last_hour, strict=True
            ):
                # The answered frame arrived; an earlier one is known to have arrived only
                # if the mark covers its readings.
                if counter == ack.answers_counter or (mark and last and last <= mark):
                    done += ids
            if done:
                self.store.mark_events_reported(done)
            if batch.device_info_counter is not None:
                self.store.put_meta("device_info_acked", self.config.software_version)
        self._apply_clock(ack)
        if ack.display_code is not None:
            self.display.show_code(ack.display_code.code)
        if ack.resend_from_hour is not None:
            self.resend_from = ack.resend_from_hour
        if ack.schedule is not None:
            sched = SendSchedule(
                ack.schedule.first_minute, ack.schedule.second_minute, ack.schedule.jitter_minutes
            )
            self.store.put_meta("schedule", sched.to_text())
            self._next_send = self._compute_next_send(self.clock.time())

    def _apply_clock(self, ack: Ack) -> None:
        counter, sent_mono = self.latest_sent if self.latest_sent else (None, 0.0)
        decision = decide_clock(
            ack,
            latest_report_counter=counter,
            report_sent_monotonic=sent_mono,
            now_monotonic=self.clock.monotonic(),
            now_wall=int(self.clock.time()),
            clock_set=self.clock.is_set,
        )
        if decision.action is ClockAction.STEP:
            self.clock.step(decision.step_seconds)
            offset = getattr(self.clock, "offset", None)
            if offset is not None:
                self.store.put_meta("clock_offset", str(offset))
            log.warning("clock stepped by %+d s (%s)", decision.step_seconds,
                        decision.reason.value)  # fmt: skip
        event = decision.event(int(self.clock.time()))
        if event is not None:
            self.store.add_event(EV_CLOCK_STEP, self._hour(), event.arg)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        latest = self.store.latest_reading()
        return {
            "meter_number": self.keys.meter_number,
            "key_id": self.keys.key_id,
            "pending_key_id": None if self.pending_rekey is None else self.pending_rekey.new_key_id,
            "latest_reading": None if latest is None else {"hour": latest.hour, "wh": latest.wh},
            "acknowledged_up_to": self.store.acknowledged_up_to(),
            "unacknowledged": len(self.store.unacknowledged_readings()),
            "pending_events": len(self.store.pending_events()),
            "send_minutes_utc": list(self.send_minutes()),
            "next_uplink_counter": self.up.peek,
            "software_version": self.config.software_version,
        }


# What the agent does with each downlink message type: a preparation that checks the frame
# can be acted on and returns the action, run once the replay window is stored.
_DOWNLINK_HANDLERS: dict[MessageType, Callable[[Agent, Opened], Callable[[], str]]] = {
    MessageType.ACK: Agent._prepare_ack,
    MessageType.REKEY_INIT: Agent._prepare_rekey_init,
}
