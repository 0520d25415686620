"""Durable, tamper-evident local store on the meter's SD card.

One SQLite file in WAL mode with ``synchronous=FULL``: a commit returns only after the WAL is
flushed, so a reading reported as stored survives a crash or power cut (as far as the SD card
honours flushes). Every write is one transaction.

Every record (reading, event, event-reported mark, acknowledgement mark, counter reservation,
service-log line) is append-only and carries:

* a global sequence number ``seq`` (1, 2, 3, ... across all record kinds), and
* an HMAC-SHA256 under a device-local key over its kind, its ``seq`` and its content, so a record
  cannot be edited, moved to another hour or swapped with another record without detection.

The records also form a hash chain: ``head_n = HMAC(k_chain, head_{n-1} || seq_n || mac_n)``, and
the latest ``(seq, head)`` is kept in ``meta`` in the same transaction. Deleting records in the
middle (a gap in ``seq``) or at the end (``meta`` head ahead of the records) is detected. What is
*not* detectable locally: a rollback of the whole database file to an older consistent copy, or
anything done by someone holding the key file. ``head()`` exposes the chain head so an external
anchor (the server's acknowledged high-water mark, a value kept on the SIM) can be compared with
``verify(anchor=...)``. See docs/meteragent-hardware.md.

Mutable state is modelled as new records rather than updates (``mark_acknowledged`` appends an
ack record, ``mark_events_reported`` appends one report record per event) so that rolling a
single row back to an earlier version is impossible without breaking the chain.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import stat
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meteragent.atomic import fsync_dir, write_atomic

log = logging.getLogger(__name__)

__all__ = [
    "EVENT_STORE_REPLACED",
    "EVENT_STORE_TAMPER",
    "Event",
    "Head",
    "LogEntry",
    "Reading",
    "Store",
    "StoreConflictError",
    "StoreDamagedError",
    "StoreError",
    "StoreTamperedError",
    "VerifyReport",
]

KEY_LEN = 32
SCHEMA_VERSION = 1
MAX_INT = 2**63 - 1
MAX_TEXT = 200
EVENT_STORE_TAMPER = "store_tamper"
# A fresh store replaced one that could not be read (kept in a ``.damaged-`` directory).
EVENT_STORE_REPLACED = "store_replaced"
META_DAMAGED_STORE = "damaged_store"  # "<kept directory>: <what was wrong>"
DAMAGED_INFIX = ".damaged-"

# Record kinds; part of every MAC so a record of one kind can never pass as another.
K_READING = b"R"
K_EVENT = b"E"
K_REPORTED = b"P"
K_ACK = b"A"
K_COUNTER = b"C"
K_LOG = b"L"
K_META = b"M"


class StoreError(Exception):
    """The store cannot do what was asked (bad argument, bad key file, bad database)."""


class StoreConflictError(StoreError):
    """A different value is already recorded for this hour; readings are immutable."""


class StoreDamagedError(StoreError):
    """The store cannot be read: a damaged database file or key file."""


class StoreTamperedError(StoreError):
    """A record needed to answer safely failed its MAC check."""


@dataclass(frozen=True)
class Reading:
    hour: int  # UTC hour index: unix seconds // 3600
    wh: int  # cumulative watt-hours at the end of that hour
    seq: int


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    hour: int
    arg: int
    seq: int
    reported: bool


@dataclass(frozen=True)
class LogEntry:
    seq: int
    ts: int
    source: str
    message: str


@dataclass(frozen=True)
class Head:
    """Position of the chain: the last sequence number and the chained MAC up to it."""

    seq: int
    mac: bytes


@dataclass(frozen=True)
class BadRecord:
    table: str
    seq: int | None
    detail: str
    hour: int | None = None


@dataclass
class VerifyReport:
    bad_records: list[BadRecord] = field(default_factory=list)
    chain_ok: bool = True
    chain_problem: str | None = None
    records_checked: int = 0
    damaged: bool = False  # the database file itself cannot be read

    @property
    def ok(self) -> bool:
        return self.chain_ok and not self.bad_records

    @property
    def bad_readings(self) -> list[BadRecord]:
        return [b for b in self.bad_records if b.table == "readings"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    hour INTEGER PRIMARY KEY, wh INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE, mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, type TEXT NOT NULL, hour INTEGER NOT NULL, arg INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE, mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS event_reports (
    event_id INTEGER PRIMARY KEY REFERENCES events(id),
    seq INTEGER NOT NULL UNIQUE, mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS acks (
    seq INTEGER PRIMARY KEY, up_to_hour INTEGER NOT NULL, mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    seq INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER NOT NULL, mac BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS counters_name ON counters(name, value);
CREATE TABLE IF NOT EXISTS service_log (
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
    mac BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS agent_meta (
    seq INTEGER PRIMARY KEY, name TEXT NOT NULL, value TEXT NOT NULL, mac BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS agent_meta_name ON agent_meta(name, seq);
"""


def _check_int(name: str, value: int, lo: int = 0, hi: int = MAX_INT) -> int:
    # bool is an int subclass; a True reading is a bug, not 1 Wh.
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise StoreError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _check_text(name: str, value: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise StoreError(f"{name} must be a string of at most {MAX_TEXT} characters")
    return value


def _enc(*parts: int | str | bytes) -> bytes:
    """Unambiguous encoding of a record's fields for the MAC (length-prefixed, typed)."""
    out = bytearray()
    for p in parts:
        if isinstance(p, bool):  # pragma: no cover - guarded by _check_int
            raise TypeError("bool")
        if isinstance(p, int):
            out += b"i" + struct.pack(">q", p)
        else:
            raw = p.encode("utf-8") if isinstance(p, str) else p
            out += b"s" + struct.pack(">I", len(raw)) + raw
    return bytes(out)


def load_or_create_key(path: Path) -> bytes:
    """Return the device-local store key, creating it (0600, written atomically) on first start.

    Atomic: a power cut while it is created leaves no key file (made again at the next start),
    never an empty one. A key file of the wrong size is damage (:class:`StoreDamagedError`)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_LEN)
        write_atomic(path, key, 0o600)
        return key
    # A key readable by others is no longer device-local; refuse rather than trust it.
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreError(f"key file {path} must not be accessible by group/others")
    key = path.read_bytes()
    if len(key) != KEY_LEN:
        raise StoreDamagedError(f"key file {path} has {len(key)} bytes, expected {KEY_LEN}")
    return key


class _Macer:
    """HMAC-SHA256 with purpose-separated subkeys derived by HKDF from the device key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise StoreError(f"store key must be {KEY_LEN} bytes")
        self._record_key = self._derive(key, b"meteragent store v1 record mac")
        self._chain_key = self._derive(key, b"meteragent store v1 chain mac")

    @staticmethod
    def _derive(key: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)

    def record(self, kind: bytes, seq: int, *content: int | str) -> bytes:
        h = hmac.HMAC(self._record_key, hashes.SHA256())
        h.update(_enc(kind, seq, *content))
        return h.finalize()

    def record_ok(self, mac: bytes, kind: bytes, seq: int, *content: int | str) -> bool:
        h = hmac.HMAC(self._record_key, hashes.SHA256())
        h.update(_enc(kind, seq, *content))
        try:
            h.verify(bytes(mac))  # constant-time comparison
        except (InvalidSignature, TypeError):
            return False
        return True

    def genesis(self, store_id: bytes) -> bytes:
        h = hmac.HMAC(self._chain_key, hashes.SHA256())
        h.update(_enc(b"genesis", store_id))
        return h.finalize()

    def chain(self, prev: bytes, seq: int, mac: bytes) -> bytes:
        h = hmac.HMAC(self._chain_key, hashes.SHA256())
        h.update(_enc(prev, seq, bytes(mac)))
        return h.finalize()


class Store:
    """The meter's local store. Not thread-safe: one agent process owns it."""

    def __init__(self, path: str | os.PathLike[str], key: bytes | None = None) -> None:
        self.path = Path(path)
        if key is None:
            key = load_or_create_key(self.path.with_name(self.path.name + ".key"))
        self._mac = _Macer(key)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each write is exactly
        # one transaction and nothing is left open implicitly.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreDamagedError(f"{self.path} cannot be read: {exc}") from None

    # ---------------------------------------------------------------- internals

    def _init_schema(self) -> None:
        # executescript commits any open transaction, so run it first; the CREATEs are
        # idempotent and harmless if interrupted.
        self._db.executescript(_SCHEMA)
        with self._tx():
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                store_id = secrets.token_bytes(16)
                self._db.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [
                        ("schema", SCHEMA_VERSION),
                        ("store_id", store_id),
                        ("head_seq", 0),
                        ("head_mac", self._mac.genesis(store_id)),
                    ],
                )
            elif row[0] != SCHEMA_VERSION:
                raise StoreError(f"unsupported store schema {row[0]!r}")

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            # IMMEDIATE takes the write lock up front, so the read of the head and the
            # append cannot interleave with another writer.
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")

    def _tx(self) -> Store._Tx:
        return Store._Tx(self._db)

    def _meta(self, key: str) -> object:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            raise StoreTamperedError(f"meta entry {key!r} missing")
        return row[0]

    def _append(self, kind: bytes, *content: int | str) -> tuple[int, bytes]:
        """Allocate the next seq, MAC the record and advance the chain head. Inside a tx."""
        seq = int(self._meta("head_seq")) + 1  # type: ignore[call-overload]
        prev = bytes(self._meta("head_mac"))  # type: ignore[call-overload]
        mac = self._mac.record(kind, seq, *content)
        head = self._mac.chain(prev, seq, mac)
        self._db.execute("UPDATE meta SET value=? WHERE key='head_seq'", (seq,))
        self._db.execute("UPDATE meta SET value=? WHERE key='head_mac'", (head,))
        return seq, mac

    # ---------------------------------------------------------------- readings

    def record_reading(self, hour: int, wh: int) -> bool:
        """Durably store the cumulative reading for ``hour``.

        Returns True if written, False if the same value was already stored (idempotent
        retry after a crash). A different value for a stored hour raises StoreConflictError:
        readings are facts, and a second opinion about an hour is an event, not an update.
        """
        _check_int("hour", hour)
        _check_int("wh", wh)
        with self._tx() as db:
            row = db.execute("SELECT wh FROM readings WHERE hour=?", (hour,)).fetchone()
            if row is not None:
                if row[0] == wh:
                    return False
                raise StoreConflictError(f"hour {hour} already has {row[0]} Wh, refused {wh} Wh")
            seq, mac = self._append(K_READING, hour, wh)
            db.execute(
                "INSERT INTO readings(hour, wh, seq, mac) VALUES (?, ?, ?, ?)", (hour, wh, seq, mac)
            )
        return True

    def record_reading_with_meta(self, hour: int, wh: int, meta: dict[str, str]) -> bool:
        """Like :meth:`record_reading`, and append ``meta`` values in the same transaction,
        so state that belongs to the reading (the metering IC's accumulator position) costs
        no extra durable write. Nothing is written if the reading is a duplicate."""
        _check_int("hour", hour)
        _check_int("wh", wh)
        for name, value in meta.items():
            _check_text("meta name", name)
            _check_text("meta value", value)
        with self._tx() as db:
            row = db.execute("SELECT wh FROM readings WHERE hour=?", (hour,)).fetchone()
            if row is not None:
                if row[0] == wh:
                    return False
                raise StoreConflictError(f"hour {hour} already has {row[0]} Wh, refused {wh} Wh")
            seq, mac = self._append(K_READING, hour, wh)
            db.execute(
                "INSERT INTO readings(hour, wh, seq, mac) VALUES (?, ?, ?, ?)", (hour, wh, seq, mac)
            )
            for name, value in meta.items():
                self._put_meta(name, value)
        return True

    def _reading_ok(self, hour: int, wh: int, seq: int, mac: bytes) -> bool:
        return self._mac.record_ok(mac, K_READING, seq, hour, wh)

    def latest_reading(self) -> Reading | None:
        """The newest reading whose MAC checks out."""
        for hour, wh, seq, mac in self._db.execute(
            "SELECT hour, wh, seq, mac FROM readings ORDER BY hour DESC"
        ):
            if self._reading_ok(hour, wh, seq, mac):
                return Reading(hour, wh, seq)
        return None

    def readings(self, since_hour: int = 0) -> list[Reading]:
        """All verified readings from ``since_hour`` on (e.g. for the SD-card export)."""
        rows = self._db.execute(
            "SELECT hour, wh, seq, mac FROM readings WHERE hour >= ? ORDER BY hour", (since_hour,)
        ).fetchall()
        return [Reading(h, w, s) for h, w, s, m in rows if self._reading_ok(h, w, s, m)]

    def unacknowledged_readings(self) -> list[Reading]:
        """Readings after the acknowledged high-water mark, oldest first.

        Records failing their MAC are left out: a tampered reading is never sent; verify()
        finds it and the agent reports it as an event.
        """
        ack = self.acknowledged_up_to()
        return self.readings(0 if ack is None else ack + 1)

    # ---------------------------------------------------------------- acknowledgements

    def acknowledged_up_to(self) -> int | None:
        """The acknowledged high-water mark (an hour), from the newest valid ack record."""
        for seq, up_to, mac in self._db.execute(
            "SELECT seq, up_to_hour, mac FROM acks ORDER BY seq DESC"
        ):
            if self._mac.record_ok(mac, K_ACK, seq, up_to):
                return int(up_to)
        return None

    def mark_acknowledged(self, up_to_hour: int) -> bool:
        """Move the high-water mark forward; never backwards. Returns True if it moved.

        An ack beyond the newest stored reading cannot be genuine (the server cannot have
        received readings we never took), so it is refused.
        """
        _check_int("up_to_hour", up_to_hour)
        with self._tx() as db:
            current = self.acknowledged_up_to()
            if current is not None and up_to_hour <= current:
                return False
            latest = db.execute("SELECT MAX(hour) FROM readings").fetchone()[0]
            if latest is None or up_to_hour > latest:
                raise StoreError(f"ack up to hour {up_to_hour} is beyond the newest reading")
            seq, mac = self._append(K_ACK, up_to_hour)
            db.execute(
                "INSERT INTO acks(seq, up_to_hour, mac) VALUES (?, ?, ?)", (seq, up_to_hour, mac)
            )
        return True

    # ---------------------------------------------------------------- events

    def add_event(self, type: str, hour: int, arg: int = 0) -> int:
        """Queue an event (tamper, clock jump, energy jump, ...) for reporting. Returns its id."""
        _check_text("type", type)
        _check_int("hour", hour)
        _check_int("arg", arg, -MAX_INT, MAX_INT)
        with self._tx() as db:
            seq, mac = self._append(K_EVENT, type, hour, arg)
            cur = db.execute(
                "INSERT INTO events(type, hour, arg, seq, mac) VALUES (?, ?, ?, ?, ?)",
                (type, hour, arg, seq, mac),
            )
            event_id = cur.lastrowid
            assert event_id is not None
        return event_id

    def _event_ok(self, type_: str, hour: int, arg: int, seq: int, mac: bytes) -> bool:
        return self._mac.record_ok(mac, K_EVENT, seq, type_, hour, arg)

    def events(self) -> list[Event]:
        """All verified events, oldest first; ``reported`` reflects valid report records."""
        reported = {
            eid
            for eid, seq, mac in self._db.execute("SELECT event_id, seq, mac FROM event_reports")
            if self._mac.record_ok(mac, K_REPORTED, seq, eid)
        }
        return [
            Event(i, t, h, a, s, i in reported)
            for i, t, h, a, s, m in self._db.execute(
                "SELECT id, type, hour, arg, seq, mac FROM events ORDER BY id"
            )
            if self._event_ok(t, h, a, s, m)
        ]

    def pending_events(self) -> list[Event]:
        return [e for e in self.events() if not e.reported]

    def mark_events_reported(self, ids: Iterable[int]) -> int:
        """Record that these events reached the server. Returns how many were newly marked."""
        wanted = sorted({_check_int("event id", i, 1) for i in ids})
        n = 0
        with self._tx() as db:
            for eid in wanted:
                if db.execute("SELECT 1 FROM events WHERE id=?", (eid,)).fetchone() is None:
                    raise StoreError(f"no event with id {eid}")
                if db.execute("SELECT 1 FROM event_reports WHERE event_id=?", (eid,)).fetchone():
                    continue
                seq, mac = self._append(K_REPORTED, eid)
                db.execute(
                    "INSERT INTO event_reports(event_id, seq, mac) VALUES (?, ?, ?)",
                    (eid, seq, mac),
                )
                n += 1
        return n

    # ---------------------------------------------------------------- counters

    def load_counter(self, name: str) -> int:
        """Next never-reserved value of a persisted counter (0 if never reserved).

        The highest *valid* reservation wins: counters only grow, so an unverifiable row is
        ignored rather than trusted, and a deleted newest row shows up in verify().
        """
        _check_text("name", name)
        best = 0
        for seq, value, mac in self._db.execute(
            "SELECT seq, value, mac FROM counters WHERE name=? ORDER BY value DESC", (name,)
        ):
            if self._mac.record_ok(mac, K_COUNTER, seq, name, value):
                best = int(value)
                break
        return best

    def reserve_counter(self, name: str, block: int) -> int:
        """Atomically reserve ``block`` values; returns the first one.

        The reservation is durable before the caller uses any value from it, so a crash can
        only skip values, never reuse them (nonces and message counters depend on this).
        """
        _check_text("name", name)
        _check_int("block", block, 1, 2**32)
        with self._tx() as db:
            first = self.load_counter(name)
            end = first + block
            _check_int("counter", end)
            seq, mac = self._append(K_COUNTER, name, end)
            db.execute(
                "INSERT INTO counters(seq, name, value, mac) VALUES (?, ?, ?, ?)",
                (seq, name, end, mac),
            )
        return first

    # ---------------------------------------------------------------- service log

    def log(self, ts: int, source: str, message: str) -> int:
        """Append to the local service log (console actions, restarts). Returns its seq."""
        _check_int("ts", ts)
        _check_text("source", source)
        _check_text("message", message)
        with self._tx() as db:
            seq, mac = self._append(K_LOG, ts, source, message)
            db.execute(
                "INSERT INTO service_log(seq, ts, source, message, mac) VALUES (?, ?, ?, ?, ?)",
                (seq, ts, source, message, mac),
            )
        return seq

    def service_log(self, since_seq: int = 0) -> list[LogEntry]:
        rows = self._db.execute(
            "SELECT seq, ts, source, message, mac FROM service_log WHERE seq > ? ORDER BY seq",
            (since_seq,),
        ).fetchall()
        return [
            LogEntry(s, t, src, m)
            for s, t, src, m, mac in rows
            if self._mac.record_ok(mac, K_LOG, s, t, src, m)
        ]

    # ---------------------------------------------------------------- agent metadata

    def _put_meta(self, name: str, value: str) -> None:
        seq, mac = self._append(K_META, name, value)
        self._db.execute(
            "INSERT INTO agent_meta(seq, name, value, mac) VALUES (?, ?, ?, ?)",
            (seq, name, value, mac),
        )

    def put_meta(self, name: str, value: str) -> None:
        """Durably set the agent's small state value ``name`` (replay window, schedule,
        energy-source position). Appended like every record, so it is MACed and chained;
        the newest valid record wins."""
        _check_text("name", name)
        _check_text("value", value)
        with self._tx():
            self._put_meta(name, value)

    def get_meta(self, name: str) -> str | None:
        """The newest value of ``name`` whose MAC checks out, or None."""
        _check_text("name", name)
        for seq, value, mac in self._db.execute(
            "SELECT seq, value, mac FROM agent_meta WHERE name=? ORDER BY seq DESC", (name,)
        ):
            if isinstance(value, str) and self._mac.record_ok(mac, K_META, seq, name, value):
                return value
        return None

    # ---------------------------------------------------------------- integrity

    def head(self) -> Head:
        return Head(int(self._meta("head_seq")), bytes(self._meta("head_mac")))  # type: ignore[call-overload]

    def verify(self, anchor: Head | None = None) -> VerifyReport:
        """Check every record's MAC and the chain; never raises on tampered content.

        ``anchor`` is a head seen earlier (kept outside this file); the chain must pass
        through it, which catches a rollback of the database to a copy older than the anchor.
        """
        report = VerifyReport()
        try:
            self._verify(report, anchor)
        except sqlite3.DatabaseError as exc:
            # A damaged page: the file cannot be read as a whole, which is itself the finding.
            report.chain_ok = False
            report.chain_problem = f"database damaged: {exc}"
            report.damaged = True
        return report

    def _verify(self, report: VerifyReport, anchor: Head | None) -> None:
        entries: list[tuple[int, bytes, str, int | None]] = []  # (seq, mac, table, hour)

        def check(table: str, seq: object, mac: object, ok: bool, hour: int | None = None) -> None:
            if not isinstance(seq, int) or not isinstance(mac, bytes):
                report.bad_records.append(BadRecord(table, None, "malformed row", hour))
                return
            if not ok:
                report.bad_records.append(BadRecord(table, seq, "MAC mismatch", hour))
            entries.append((seq, mac, table, hour))

        db = self._db
        for hour, wh, seq, mac in db.execute("SELECT hour, wh, seq, mac FROM readings"):
            ok = _typed(hour, wh, seq) and self._reading_ok(hour, wh, seq, mac)
            check("readings", seq, mac, ok, hour if isinstance(hour, int) else None)
        for _i, t, h, a, seq, mac in db.execute("SELECT id, type, hour, arg, seq, mac FROM events"):
            ok = isinstance(t, str) and _typed(h, a, seq) and self._event_ok(t, h, a, seq, mac)
            check("events", seq, mac, ok, h if isinstance(h, int) else None)
        for eid, seq, mac in db.execute("SELECT event_id, seq, mac FROM event_reports"):
            ok = _typed(eid, seq) and self._mac.record_ok(mac, K_REPORTED, seq, eid)
            check("event_reports", seq, mac, ok)
        for seq, up_to, mac in db.execute("SELECT seq, up_to_hour, mac FROM acks"):
            ok = _typed(seq, up_to) and self._mac.record_ok(mac, K_ACK, seq, up_to)
            check("acks", seq, mac, ok, up_to if isinstance(up_to, int) else None)
        for seq, name, value, mac in db.execute("SELECT seq, name, value, mac FROM counters"):
            ok = (
                isinstance(name, str)
                and _typed(seq, value)
                and self._mac.record_ok(mac, K_COUNTER, seq, name, value)
            )
            check("counters", seq, mac, ok)
        for seq, ts, src, msg, mac in db.execute(
            "SELECT seq, ts, source, message, mac FROM service_log"
        ):
            ok = (
                isinstance(src, str)
                and isinstance(msg, str)
                and _typed(seq, ts)
                and self._mac.record_ok(mac, K_LOG, seq, ts, src, msg)
            )
            check("service_log", seq, mac, ok)
        for seq, name, value, mac in db.execute("SELECT seq, name, value, mac FROM agent_meta"):
            ok = (
                isinstance(name, str)
                and isinstance(value, str)
                and _typed(seq)
                and self._mac.record_ok(mac, K_META, seq, name, value)
            )
            check("agent_meta", seq, mac, ok)

        report.records_checked = len(entries)
        self._verify_chain(sorted(entries, key=lambda e: e[0]), report, anchor)

    def _verify_chain(
        self,
        entries: list[tuple[int, bytes, str, int | None]],
        report: VerifyReport,
        anchor: Head | None,
    ) -> None:
        def fail(problem: str) -> None:
            if report.chain_ok:
                report.chain_ok = False
                report.chain_problem = problem

        try:
            store_id = bytes(self._meta("store_id"))  # type: ignore[call-overload]
            head = self.head()
        except (StoreTamperedError, TypeError, ValueError) as exc:
            fail(f"meta damaged: {exc}")
            return
        mac = self._mac.genesis(store_id)
        anchor_seen = anchor is None or anchor.seq == 0
        expected = 1
        for seq, rec_mac, table, _hour in entries:
            if seq != expected:
                # A gap means deleted records; a repeat means a duplicated seq across tables.
                fail(f"sequence break at {seq} ({table}), expected {expected}")
                return
            mac = self._mac.chain(mac, seq, rec_mac)
            if anchor is not None and seq == anchor.seq:
                if not secrets.compare_digest(mac, anchor.mac):
                    fail(f"chain does not pass through the anchor at seq {seq}")
                    return
                anchor_seen = True
            expected += 1
        last = expected - 1
        if last != head.seq:
            fail(f"records end at seq {last} but the head says {head.seq} (records deleted)")
        elif not secrets.compare_digest(mac, head.mac):
            fail("chain head mismatch")
        elif not anchor_seen:
            fail(f"store ends at seq {last}, before the anchor at {anchor.seq} (rolled back)")  # type: ignore[union-attr]

    def report_tampering(self, hour: int) -> VerifyReport:
        """Run verify() and queue one ``store_tamper`` event per newly found bad record.

        ``hour`` is the current hour, used for the chain-break event. Events already queued
        for the same record are not duplicated, so calling this at every start is safe.
        """
        report = self.verify()
        if report.damaged:
            return report  # nothing more can be read or written safely: see open_store
        existing = {(e.type, e.hour, e.arg) for e in self.events()}
        wanted: list[tuple[int, int]] = []
        for bad in report.bad_records:
            # arg: the bad record's seq (or -1 if unreadable); hour: the reading's hour if known.
            wanted.append((bad.hour if bad.hour is not None else hour, bad.seq or -1))
        chain_reported = any(e.type == EVENT_STORE_TAMPER and e.arg == 0 for e in self.events())
        if not report.chain_ok and not chain_reported:
            # arg 0: the chain itself is broken; reported once, not at every start.
            wanted.append((hour, 0))
        for h, arg in wanted:
            key = (EVENT_STORE_TAMPER, h, arg)
            if key not in existing and h >= 0:
                self.add_event(EVENT_STORE_TAMPER, h, arg)
                existing.add(key)
        return report

    def damage(self) -> str | None:
        """What makes the file unreadable (SQLite's ``quick_check`` reads every page), or None."""
        try:
            rows = self._db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        result = "; ".join(str(r[0]) for r in rows)[:MAX_TEXT]
        return None if result == "ok" else result or "no answer"

    def integrity_check(self) -> str:
        """SQLite's own check of the file: "ok", or what is wrong (never raises)."""
        try:
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return "; ".join(str(r[0]) for r in rows)[:MAX_TEXT] or "no answer"

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def damaged_copies(path: Path) -> list[Path]:
    """The damaged stores kept beside ``path`` for the engineer, oldest first."""
    return sorted(path.parent.glob(path.name + DAMAGED_INFIX + "*"))


def _keep_damaged(path: Path, now: float) -> Path:
    """Move the store's files (database, WAL, shared memory, key) into a new directory."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    kept = path.with_name(f"{path.name}{DAMAGED_INFIX}{stamp}")
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}{DAMAGED_INFIX}{stamp}-{n}")
    kept.mkdir(mode=0o700)
    for suffix in ("", "-wal", "-shm", ".key"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, kept / part.name)
    fsync_dir(kept)
    fsync_dir(path.parent)
    return kept


def open_store(path: Path, now: float) -> Store:
    """Open the store; one that cannot be read is kept aside and a fresh one is started.

    The meter keeps measuring into the fresh store, which records why (``damaged_store``,
    shown by the agent and ``self-test``) and queues a ``store_replaced`` event, reported as
    STORE_INTEGRITY at the next send. The damaged files stay in the ``.damaged-`` directory
    with their key, for the engineer."""
    try:
        store = Store(path)
    except StoreDamagedError as exc:
        problem = str(exc)
    else:
        problem = store.damage()
        if problem is None:
            return store
        store.close()
    kept = _keep_damaged(path, now)
    log.error("store %s cannot be read (%s); kept in %s, starting a fresh store", path, problem,
              kept)  # fmt: skip
    store = Store(path)
    store.put_meta(META_DAMAGED_STORE, f"{kept.name}: {problem}"[:MAX_TEXT])
    store.add_event(EVENT_STORE_REPLACED, int(now) // 3600, 0)
    return store


def _typed(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
