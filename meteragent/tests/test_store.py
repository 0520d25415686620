"""The meter's durable, tamper-evident local store."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat

import pytest

from meteragent.store import (
    EVENT_STORE_TAMPER,
    Store,
    StoreConflictError,
    StoreError,
)

KEY = bytes(range(32))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "meter.db", key=KEY)
    yield s
    s.close()


def raw(store: Store) -> sqlite3.Connection:
    """A second connection, as an attacker with the SD card in a reader would have."""
    return sqlite3.connect(store.path, isolation_level=None)


def test_pragmas_wal_and_full_sync(store):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_key_file_created_0600_and_reused(tmp_path):
    db = tmp_path / "meter.db"
    s = Store(db)
    s.record_reading(10, 5)
    s.close()
    key_file = tmp_path / "meter.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    s = Store(db)  # same key: the old record still verifies
    assert s.verify().ok
    assert [r.wh for r in s.unacknowledged_readings()] == [5]
    s.close()


def test_key_file_readable_by_others_is_refused(tmp_path):
    key_file = tmp_path / "meter.db.key"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o644)
    with pytest.raises(StoreError, match="group/others"):
        Store(tmp_path / "meter.db")


def test_wrong_key_makes_every_record_fail(tmp_path):
    s = Store(tmp_path / "m.db", key=KEY)
    s.record_reading(1, 1)
    s.close()
    s = Store(tmp_path / "m.db", key=bytes(32))
    report = s.verify()
    assert not report.ok
    assert s.unacknowledged_readings() == []
    s.close()


def test_record_reading_is_idempotent_and_refuses_conflicts(store):
    assert store.record_reading(100, 1234) is True
    assert store.record_reading(100, 1234) is False
    with pytest.raises(StoreConflictError):
        store.record_reading(100, 1235)
    assert [(r.hour, r.wh) for r in store.unacknowledged_readings()] == [(100, 1234)]


@pytest.mark.parametrize("hour, wh", [(-1, 0), (0, -5), (True, 1), (1.5, 1), (2**63, 1)])
def test_record_reading_rejects_bad_values(store, hour, wh):
    with pytest.raises(StoreError):
        store.record_reading(hour, wh)


def test_acknowledgement_high_water_mark(store):
    for h in range(10, 15):
        store.record_reading(h, h * 100)
    assert store.acknowledged_up_to() is None
    assert store.mark_acknowledged(12) is True
    assert [r.hour for r in store.unacknowledged_readings()] == [13, 14]
    assert store.mark_acknowledged(11) is False  # never backwards
    assert store.acknowledged_up_to() == 12
    with pytest.raises(StoreError):
        store.mark_acknowledged(99)  # beyond anything we took
    assert store.verify().ok


def test_events_pending_and_reported(store):
    a = store.add_event("clock_jump", 500, 3600)
    b = store.add_event("energy_jump", 501, -7)
    assert [e.id for e in store.pending_events()] == [a, b]
    assert store.mark_events_reported([a]) == 1
    assert store.mark_events_reported([a]) == 0
    assert [e.id for e in store.pending_events()] == [b]
    assert store.pending_events()[0].arg == -7
    with pytest.raises(StoreError):
        store.mark_events_reported([999])
    assert store.verify().ok


def test_counters_reserve_blocks_and_persist(tmp_path):
    s = Store(tmp_path / "m.db", key=KEY)
    assert s.load_counter("tx") == 0
    assert s.reserve_counter("tx", 16) == 0
    assert s.reserve_counter("tx", 16) == 16
    assert s.reserve_counter("other", 1) == 0
    s.close()
    s = Store(tmp_path / "m.db", key=KEY)
    assert s.load_counter("tx") == 32  # the whole reserved block is skipped after restart
    assert s.reserve_counter("tx", 1) == 32
    with pytest.raises(StoreError):
        s.reserve_counter("tx", 0)
    s.close()


def test_service_log(store):
    store.log(1_700_000_000, "console", "engineer login")
    store.log(1_700_000_060, "console", "config change")
    entries = store.service_log()
    assert [e.message for e in entries] == ["engineer login", "config change"]
    assert store.service_log(since_seq=entries[0].seq) == entries[1:]


# ------------------------------------------------------------------ tamper evidence


def fill(store: Store) -> None:
    for h in range(1000, 1006):
        store.record_reading(h, 10_000 + h)
    store.add_event("boot", 1000, 0)
    store.reserve_counter("tx", 8)
    store.log(1, "console", "x")


def test_clean_store_verifies(store):
    fill(store)
    report = store.verify()
    assert report.ok, report
    assert report.records_checked == 9


def test_edited_reading_is_detected_and_not_sent(store):
    """The Siegen "offline overwrite": rewriting the stored consumption on the card."""
    fill(store)
    raw(store).execute("UPDATE readings SET wh = wh - 500 WHERE hour = 1003")
    report = store.verify()
    assert [b.hour for b in report.bad_readings] == [1003]
    assert 1003 not in [r.hour for r in store.unacknowledged_readings()]


def test_swapped_readings_are_detected(store):
    fill(store)
    db = raw(store)
    (wh1,) = db.execute("SELECT wh FROM readings WHERE hour=1001").fetchone()
    (wh2,) = db.execute("SELECT wh FROM readings WHERE hour=1002").fetchone()
    (m1,) = db.execute("SELECT mac FROM readings WHERE hour=1001").fetchone()
    (m2,) = db.execute("SELECT mac FROM readings WHERE hour=1002").fetchone()
    db.execute("UPDATE readings SET wh=?, mac=? WHERE hour=1001", (wh2, m2))
    db.execute("UPDATE readings SET wh=?, mac=? WHERE hour=1002", (wh1, m1))
    assert sorted(b.hour for b in store.verify().bad_readings) == [1001, 1002]


def test_moving_a_reading_to_another_hour_is_detected(store):
    fill(store)
    raw(store).execute("UPDATE readings SET hour = 2000 WHERE hour = 1005")
    assert [b.hour for b in store.verify().bad_readings] == [2000]


def test_deleting_the_latest_reading_breaks_the_chain(store):
    fill(store)
    store.record_reading(1006, 1)
    raw(store).execute("DELETE FROM readings WHERE hour = 1006")
    report = store.verify()
    assert not report.bad_records  # every remaining record is genuine ...
    assert not report.chain_ok  # ... but one is missing
    assert "deleted" in report.chain_problem


def test_deleting_a_middle_record_breaks_the_chain(store):
    fill(store)
    raw(store).execute("DELETE FROM readings WHERE hour = 1002")
    report = store.verify()
    assert not report.chain_ok and "sequence break" in report.chain_problem


def test_hiding_an_event_by_forging_a_report_is_detected(store):
    fill(store)
    eid = store.add_event("cover_open", 1006, 1)
    seq = store.head().seq + 1
    db = raw(store)
    db.execute("INSERT INTO event_reports VALUES (?, ?, ?)", (eid, seq, b"\0" * 32))
    db.execute("UPDATE meta SET value=? WHERE key='head_seq'", (seq,))
    assert eid in [e.id for e in store.pending_events()]  # forged mark ignored
    assert not store.verify().ok


def test_rolling_back_an_ack_row_is_detected(store):
    fill(store)
    store.mark_acknowledged(1002)
    store.mark_acknowledged(1004)
    raw(store).execute("DELETE FROM acks WHERE up_to_hour = 1004")
    assert store.acknowledged_up_to() == 1002
    assert not store.verify().chain_ok


def test_whole_file_rollback_detected_only_with_an_external_anchor(tmp_path):
    s = Store(tmp_path / "m.db", key=KEY)
    fill(s)
    s.close()
    shutil.copy(tmp_path / "m.db", tmp_path / "old.db")
    s = Store(tmp_path / "m.db", key=KEY)
    s.record_reading(1006, 1)
    anchor = s.head()  # e.g. confirmed by the server
    s.close()
    shutil.copy(tmp_path / "old.db", tmp_path / "m.db")
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"m.db{suffix}").unlink(missing_ok=True)
    s = Store(tmp_path / "m.db", key=KEY)
    assert s.verify().ok  # an older consistent copy is indistinguishable locally
    report = s.verify(anchor=anchor)
    assert not report.chain_ok and "rolled back" in report.chain_problem
    s.close()


def test_anchor_accepts_a_store_that_has_moved_on(store):
    fill(store)
    anchor = store.head()
    store.record_reading(1006, 1)
    assert store.verify(anchor=anchor).ok


def test_garbage_in_columns_never_raises(store):
    fill(store)
    db = raw(store)
    db.execute("UPDATE readings SET wh = 'lots', mac = x'00' WHERE hour = 1000")
    db.execute("UPDATE events SET seq = 'x'")
    report = store.verify()
    assert not report.ok
    assert 1000 not in [r.hour for r in store.unacknowledged_readings()]


def test_report_tampering_queues_events_once(store):
    fill(store)
    raw(store).execute("UPDATE readings SET wh = 1 WHERE hour = 1004")
    raw(store).execute("DELETE FROM service_log")
    store.report_tampering(hour=2000)
    store.report_tampering(hour=2001)
    tamper = [e for e in store.pending_events() if e.type == EVENT_STORE_TAMPER]
    assert sorted((e.hour, e.arg == 0) for e in tamper) == [(1004, False), (2000, True)]
