"""Damaged storage: a power cut while the store key is created, a zeroed page, a truncated file.

The box must come up again, keep measuring (into a fresh store, the damaged one kept for the
engineer), show the error, report STORE_INTEGRITY at the next send, and ``self-test`` must
print FAIL with the reason - never a traceback, never a restart loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from meteragent.clock import FakeClock
from meteragent.display import LogDisplay
from meteragent.protocol import (
    EventKind,
    KeyState,
    ReplayWindow,
    Report,
    decode_uplink,
    derive_keys,
)
from meteragent.store import (
    EVENT_STORE_REPLACED,
    META_DAMAGED_STORE,
    Store,
    StoreDamagedError,
    damaged_copies,
    open_store,
)
from meteragent.tests.support import (
    DAMAGE,
    KEY_ID,
    ROOT,
    T0,
    RecordingNetwork,
    fill_store,
    make_agent,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Dies (SIGKILL, like a power cut) at the first os.write, os.fsync or os.replace that touches
# the store's key file (or its temporary file).
KILLED_WHILE_CREATING_KEY = """
import os, signal, sys
from meteragent.store import Store
point = sys.argv[2]
real = getattr(os, point)
def die(target, *args):
    name = os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else str(target)
    if ".key" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(target, *args)
setattr(os, point, die)
Store(sys.argv[1])
"""


@pytest.mark.parametrize("point", ["write", "fsync", "replace"])
def test_a_power_cut_while_the_store_key_is_created_does_not_brick_the_box(
    tmp_path: Path, point: str
) -> None:
    db = tmp_path / "meter.db"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_CREATING_KEY, str(db), point],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL  # it really died half-way
    with Store(db) as store:  # the next start simply creates the key
        store.record_reading(T0 // 3600, 1000)
        assert store.verify().ok
    assert len((tmp_path / "meter.db.key").read_bytes()) == 32


@pytest.mark.parametrize("damage", ["zeroed table page", "truncated file"])
def test_verify_reports_damage_instead_of_raising(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "meter.db"
    fill_store(db)
    DAMAGE[damage](db)
    try:
        store = Store(db)
    except StoreDamagedError:
        return  # found at open: a clear error, not sqlite3's
    with store:
        report = store.verify()
        assert report.damaged and not report.ok
        assert "database damaged" in (report.chain_problem or "")
        assert store.report_tampering(T0 // 3600).damaged
        assert store.damage() is not None
        assert store.integrity_check() != "ok"


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_agent_keeps_measuring_on_a_fresh_store_and_reports_the_damage(
    tmp_path: Path, damage: str
) -> None:
    db = tmp_path / "meter.db"
    fill_store(db)
    DAMAGE[damage](db)
    clock = FakeClock(T0 + 500 * 3600 + 5, settle=0)
    store = open_store(db, clock.time())
    kept = damaged_copies(db)
    assert len(kept) == 1
    assert {p.name for p in kept[0].iterdir()} >= {"meter.db", "meter.db.key"}
    assert (store.get_meta(META_DAMAGED_STORE) or "").startswith(kept[0].name + ": ")
    assert [e.type for e in store.pending_events()] == [EVENT_STORE_REPLACED]

    net = RecordingNetwork(clock)
    display = LogDisplay()
    agent = make_agent(store, clock, net, display=display)
    agent.start()
    assert display.status == "STORE ERROR"
    agent.tick()  # this hour's reading, into the fresh store
    assert store.latest_reading() is not None
    agent.send_now()
    session = derive_keys(ROOT, KEY_ID)
    events = []
    readings = []
    for frame in net.frames:
        message = decode_uplink(frame, lambda _kid: KeyState(session, ReplayWindow())).message
        if not isinstance(message, Report):
            continue  # DEVICE_INFO
        events += message.events
        readings += message.readings
    assert any(e.kind is EventKind.STORE_INTEGRITY and e.arg == -1 for e in events)
    assert readings
    store.close()

    # Restarted, the box runs on: the fresh store is fine and not replaced again.
    with open_store(db, clock.time()) as again:
        assert again.latest_reading() is not None
    assert len(damaged_copies(db)) == 1


def test_an_empty_store_key_left_by_an_older_version_is_survived(tmp_path: Path) -> None:
    """A 0-byte key (an interrupted, non-atomic creation) is damage, not a dead end."""
    db = tmp_path / "meter.db"
    (tmp_path / "meter.db.key").touch(mode=0o600)
    with pytest.raises(StoreDamagedError, match="has 0 bytes"):
        Store(db)
    with open_store(db, T0) as store:
        assert store.verify().ok
    assert len(damaged_copies(db)) == 1
