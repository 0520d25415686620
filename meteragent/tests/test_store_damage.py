"""Damaged storage: a power cut while the store key is created, a zeroed page, a truncated file.

The box must come up again, keep measuring (into a fresh store, the damaged one kept for the
engineer), show the error, report STORE_INTEGRITY at the next send, and ``self-test`` must
print FAIL with the reason - never a traceback, never a restart loop.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from meteragent.agent import Agent
from meteragent.clock import FakeClock
from meteragent.console import main
from meteragent.display import LogDisplay
from meteragent.energy import SimulatedEnergySource
from meteragent.keyfile import DeviceKeys
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
from meteragent.testing import RecordingNetwork

REPO_ROOT = Path(__file__).resolve().parents[2]
UTILITY = "+447700900123"
METER = "MTR0000000000000000000042"
ROOT = bytes(range(100, 132))
KEY_ID = 3
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
PAGE = 4096

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


def _store_with_readings(path: Path, hours: int = 120) -> None:
    with Store(path) as store:
        for n in range(hours):
            store.record_reading(T0 // 3600 + n, 1000 + 7 * n)
            if n % 10 == 0:
                store.add_event("reboot", T0 // 3600 + n, 0)
    # Closing checkpoints the WAL: the damage below hits the database file itself.


def _zero_root_page(path: Path, name: str) -> None:
    with sqlite3.connect(path) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (name,)).fetchone()
    db.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * PAGE)
        f.write(bytes(PAGE))


def _truncate(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 3)


DAMAGE = {
    "zeroed table page": lambda path: _zero_root_page(path, "readings"),
    # An index page: the records still read, SQLite's own check finds it.
    "zeroed index page": lambda path: _zero_root_page(path, "sqlite_autoindex_readings_1"),
    "truncated file": _truncate,
}


@pytest.mark.parametrize("damage", ["zeroed table page", "truncated file"])
def test_verify_reports_damage_instead_of_raising(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "meter.db"
    _store_with_readings(db)
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
    _store_with_readings(db)
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
    agent = Agent(
        store=store,
        keys=DeviceKeys(METER, KEY_ID, ROOT, UTILITY),
        transport=net,
        energy=SimulatedEnergySource(seed=42, start=clock.time(), start_wh=1_000_000),
        clock=clock,
        display=display,
    )
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
        assert isinstance(message, Report)
        events += message.events
        readings += message.readings
    assert any(e.kind is EventKind.STORE_INTEGRITY and e.arg == -1 for e in events)
    assert readings
    store.close()

    # Restarted, the box runs on: the fresh store is fine and not replaced again.
    with open_store(db, clock.time()) as again:
        assert again.latest_reading() is not None
    assert len(damaged_copies(db)) == 1


@pytest.fixture
def console_env(tmp_path: Path) -> tuple[Path, list[str]]:
    data = tmp_path / "data"
    config = tmp_path / "meteragent.toml"
    config.write_text(
        f'data_dir = "{data}"\ninstall_root = "{tmp_path / "opt"}"\n'
        '[transport]\nkind = "http"\nwebhook_url = "http://127.0.0.1:9/"\nsecret = "x"\n'
        'msisdn = "+447700900201"\n[energy]\nsource = "simulated"\n'
    )
    data.mkdir(mode=0o700)
    return data, ["--config", str(config)]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_self_test_prints_fail_with_the_reason(console_env, capsys, damage: str) -> None:
    data, cfg = console_env
    _store_with_readings(data / "meter.db")
    DAMAGE[damage](data / "meter.db")
    assert main([*cfg, "self-test"]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    failed = [line for line in out.splitlines() if line.startswith("FAIL  store")]
    assert failed and all(len(line.split(None, 2)) == 3 for line in failed)  # with a reason
    # After the service has replaced it, self-test names the copy kept for the engineer.
    open_store(data / "meter.db", T0).close()
    assert main([*cfg, "self-test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  no damaged store kept  running on a fresh store; meter.db.damaged-" in out
    assert "PASS  store MACs and chain" in out


def test_an_empty_store_key_left_by_an_older_version_is_survived(tmp_path: Path) -> None:
    """A 0-byte key (an interrupted, non-atomic creation) is damage, not a dead end."""
    db = tmp_path / "meter.db"
    (tmp_path / "meter.db.key").touch(mode=0o600)
    with pytest.raises(StoreDamagedError, match="has 0 bytes"):
        Store(db)
    with open_store(db, T0) as store:
        assert store.verify().ok
    assert len(damaged_copies(db)) == 1
