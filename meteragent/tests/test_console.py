"""The service console: provisioning, status, export, update; every action logged and
queued as a SERVICE_ACTION event."""

from __future__ import annotations

import json
import stat
import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meteragent.bundle import Bundle
from meteragent.console import Action, main
from meteragent.export import verify_export
from meteragent.keyfile import load_keys, public_bytes
from meteragent.store import Store, open_store
from meteragent.tests.support import DAMAGE, fill_store

METER = "MTR0000000000000000000042"
RELEASE = Ed25519PrivateKey.generate()


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "meteragent.toml"
    config.write_text(
        f'data_dir = "{data}"\ninstall_root = "{tmp_path / "opt"}"\n'
        '[transport]\nkind = "http"\nwebhook_url = "http://127.0.0.1:9/"\nsecret = "x"\n'
        'msisdn = "+447700900201"\n[energy]\nsource = "simulated"\n'
    )
    bundle = Bundle(METER, 4, bytes(range(32)), "+447700900100",
                    datetime(2026, 1, 1, tzinfo=UTC), public_bytes(RELEASE))  # fmt: skip
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle.to_bytes())
    return tmp_path, data, ["--config", str(config)], path


def actions(data) -> list[int]:
    with Store(data / "meter.db") as store:
        return [e.arg for e in store.events() if e.type == "service_action"]


def test_load_bundle_stores_keys_privately_and_prints_the_public_key(env, capsys) -> None:
    _tmp_path, data, cfg, bundle = env
    assert main([*cfg, "load-bundle", str(bundle)]) == 0
    out = capsys.readouterr().out
    pub_hex = out.split("signing public key (new): ")[1].split()[0]
    assert len(bytes.fromhex(pub_hex)) == 32
    for name in ("keys.json", "signing.key"):
        mode = stat.S_IMODE((data / name).stat().st_mode)
        assert mode == 0o600, name
    keys = load_keys(data / "keys.json")
    assert (keys.meter_number, keys.key_id, keys.root_key) == (METER, 4, bytes(range(32)))
    assert actions(data) == [Action.LOAD_BUNDLE]
    # Loading again keeps the same signing key.
    assert main([*cfg, "load-bundle", str(bundle)]) == 0
    assert "(existing): " + pub_hex in capsys.readouterr().out


def test_a_tampered_bundle_is_refused(env, capsys) -> None:
    _tmp_path, data, cfg, bundle = env
    bundle.write_bytes(bundle.read_bytes().replace(b'"key_id": 4', b'"key_id": "4"'))
    assert main([*cfg, "load-bundle", str(bundle)]) == 2
    assert "bundle refused" in capsys.readouterr().err
    assert not (data / "keys.json").exists()


def test_status_readings_export_self_test_are_logged_and_reported(env, capsys) -> None:
    tmp_path, data, cfg, bundle = env
    main([*cfg, "load-bundle", str(bundle)])
    pub = bytes.fromhex(capsys.readouterr().out.split("(new): ")[1].split()[0])
    with Store(data / "meter.db") as store:
        for i in range(5):
            store.record_reading(490_000 + i, 100 * i)
    assert main([*cfg, "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["meter_number"] == METER and status["unacknowledged"] == 5
    assert main([*cfg, "readings", "--hours", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    out = tmp_path / "export.txt"
    assert main([*cfg, "export", str(out)]) == 0
    assert len(verify_export(out.read_bytes(), pub, meter_number=METER).readings) == 5
    main([*cfg, "self-test"])
    assert "PASS  store MACs and chain" in capsys.readouterr().out
    assert actions(data) == [Action.LOAD_BUNDLE, Action.STATUS, Action.READINGS,
                             Action.EXPORT, Action.SELF_TEST]  # fmt: skip
    with Store(data / "meter.db") as store:
        log = [e.message.split()[0] for e in store.service_log()]
    assert log == ["load_bundle", "status", "readings", "export", "self_test"]


def test_update_refusal_is_logged_and_reported(env, capsys) -> None:
    tmp_path, data, cfg, bundle = env
    main([*cfg, "load-bundle", str(bundle)])
    pkg = tmp_path / "pkg.tar.gz"
    pkg.write_bytes(b"anything")
    sig = tmp_path / "pkg.sig"
    sig.write_bytes(Ed25519PrivateKey.generate().sign(b"anything"))  # not the release key
    assert main([*cfg, "update", str(pkg), str(sig)]) == 2
    assert "update refused" in capsys.readouterr().err
    assert actions(data)[-1] == Action.UPDATE_REFUSED
    assert not (tmp_path / "opt" / "current").exists()


def test_commands_without_provisioning_fail_cleanly(env, capsys) -> None:
    _tmp_path, _data, cfg, _bundle = env
    assert main([*cfg, "status"]) == 2
    assert "load a provisioning bundle first" in capsys.readouterr().err


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_self_test_prints_fail_with_the_reason_for_a_damaged_store(env, capsys, damage) -> None:
    _tmp_path, data, cfg, bundle = env
    assert main([*cfg, "load-bundle", str(bundle)]) == 0
    (data / "meter.db").unlink()
    fill_store(data / "meter.db")
    DAMAGE[damage](data / "meter.db")
    capsys.readouterr()
    assert main([*cfg, "self-test"]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    failed = [line for line in out.splitlines() if line.startswith("FAIL  store")]
    assert failed and all(len(line.split(None, 2)) == 3 for line in failed)  # with a reason
    # Once the service has replaced it, self-test names the copy kept for the engineer.
    open_store(data / "meter.db", time.time()).close()
    assert main([*cfg, "self-test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  no damaged store kept  running on a fresh store; meter.db.damaged-" in out
    assert "PASS  store MACs and chain" in out


def test_load_bundle_after_a_power_cut_left_an_empty_store_key(env, capsys) -> None:
    """An earlier version created the store key in place: a cut left 0 bytes, and every
    command failed for ever. The store is now replaced (the empty key kept with it)."""
    _tmp_path, data, cfg, bundle = env
    data.mkdir(mode=0o700)
    (data / "meter.db.key").touch(mode=0o600)
    assert main([*cfg, "load-bundle", str(bundle), "--force"]) == 0
    assert actions(data) == [Action.LOAD_BUNDLE]
    assert main([*cfg, "self-test"]) == 1  # until the engineer takes the damaged copy away
    assert "FAIL  no damaged store kept" in capsys.readouterr().out
