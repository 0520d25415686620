"""The agent's small key/value state in the store: MACed, chained, newest valid wins."""

from __future__ import annotations

import sqlite3

import pytest

from meteragent.store import Store, StoreConflictError


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "m.db") as s:
        yield s


def test_newest_value_wins_and_survives_reopen(tmp_path) -> None:
    with Store(tmp_path / "m.db") as s:
        assert s.get_meta("window") is None
        s.put_meta("window", "1,1")
        s.put_meta("window", "5,31")
        s.put_meta("other", "x")
        assert s.get_meta("window") == "5,31"
    with Store(tmp_path / "m.db") as s:
        assert s.get_meta("window") == "5,31"
        assert s.verify().ok


def test_reading_and_meta_in_one_transaction(store: Store) -> None:
    head = store.head().seq
    assert store.record_reading_with_meta(100, 5000, {"energy": "5000,77,360000"})
    assert store.head().seq == head + 2
    assert store.get_meta("energy") == "5000,77,360000"
    # A duplicate reading writes nothing, a conflicting one nothing either.
    assert not store.record_reading_with_meta(100, 5000, {"energy": "other"})
    with pytest.raises(StoreConflictError):
        store.record_reading_with_meta(100, 5001, {"energy": "other"})
    assert store.get_meta("energy") == "5000,77,360000"
    assert store.verify().ok


def test_an_edited_value_is_ignored_and_found_by_verify(tmp_path) -> None:
    path = tmp_path / "m.db"
    with Store(path) as s:
        s.put_meta("window", "3,7")
        s.put_meta("window", "4,15")
    db = sqlite3.connect(path)
    db.execute("UPDATE agent_meta SET value='999,1' WHERE value='4,15'")
    db.commit()
    db.close()
    with Store(path) as s:
        assert s.get_meta("window") == "3,7"  # the forged newest row does not verify
        report = s.verify()
        assert not report.ok
        assert [b.table for b in report.bad_records] == ["agent_meta"]


def test_deleting_the_newest_value_breaks_the_chain(tmp_path) -> None:
    path = tmp_path / "m.db"
    with Store(path) as s:
        s.put_meta("window", "3,7")
        s.put_meta("window", "4,15")
    db = sqlite3.connect(path)
    db.execute("DELETE FROM agent_meta WHERE value='4,15'")
    db.commit()
    db.close()
    with Store(path) as s:
        assert s.get_meta("window") == "3,7"
        assert not s.verify().chain_ok
