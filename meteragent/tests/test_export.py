"""The signed SD-card export verifies with the meter's public key and fails after any change."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meteragent.export import ExportError, build_export, canonical, verify_export
from meteragent.keyfile import public_bytes
from meteragent.store import Store

METER = "MTR0000000000000000000042"


@pytest.fixture
def signed(tmp_path):
    key = Ed25519PrivateKey.generate()
    with Store(tmp_path / "m.db") as store:
        for i in range(30):
            store.record_reading(490_000 + i, 1_000 + 250 * i)
        store.mark_acknowledged(490_010)
        data = build_export(
            store, meter_number=METER, signing_key=key, created_at=1_767_225_600,
            software_version="0.1.0", since_hour=490_005,
        )  # fmt: skip
    return data, public_bytes(key)


def test_export_verifies_and_carries_the_readings(signed) -> None:
    data, pub = signed
    result = verify_export(data, pub, meter_number=METER)
    assert result.meter_number == METER
    assert result.readings[0] == (490_005, 1_000 + 250 * 5) and len(result.readings) == 25
    assert result.store_ok
    body = result.body
    assert (body["from_hour"], body["to_hour"]) == (490_005, 490_029)
    assert body["acknowledged_up_to"] == 490_010


def test_every_single_byte_change_fails(signed) -> None:
    data, pub = signed
    for i in range(len(data)):
        changed = bytearray(data)
        changed[i] ^= 0x01
        with pytest.raises(ExportError):
            verify_export(bytes(changed), pub)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d + b"\n",
        lambda d: d[:-1],
        lambda d: b" " + d,
        lambda d: d.replace(b'"readings":[[', b'"readings": [['),
        lambda d: d.split(b"\n")[0] + b"\n\n",
    ],
)
def test_structural_changes_fail(signed, mutate) -> None:
    data, pub = signed
    with pytest.raises(ExportError):
        verify_export(mutate(data), pub)


def test_a_re_signed_edit_fails_with_the_meters_key(signed) -> None:
    # An engineer edits a reading and signs with his own key (even putting it in the file).
    data, pub = signed
    body = json.loads(data.split(b"\n")[0])
    body["readings"][0][1] += 1
    other = Ed25519PrivateKey.generate()
    body["public_key"] = base64.b64encode(public_bytes(other)).decode()
    raw = canonical(body)
    forged = raw + b"\n" + base64.b64encode(other.sign(b"meteragent-export v1\n" + raw)) + b"\n"
    with pytest.raises(ExportError, match="does not verify"):
        verify_export(forged, pub)
    verify_export(forged, public_bytes(other))  # the file alone proves nothing


def test_wrong_meter_is_refused(signed) -> None:
    data, pub = signed
    with pytest.raises(ExportError, match="another meter"):
        verify_export(data, pub, meter_number="MTR0000000000000000000043")


def test_tampered_store_is_reported_in_the_export(tmp_path) -> None:
    import sqlite3

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "m.db"
    with Store(path) as store:
        store.record_reading(10, 100)
        store.record_reading(11, 200)
    db = sqlite3.connect(path)
    db.execute("UPDATE readings SET wh=150 WHERE hour=11")
    db.commit()
    db.close()
    with Store(path) as store:
        data = build_export(store, meter_number=METER, signing_key=key, created_at=0,
                            software_version="0.1.0")  # fmt: skip
    result = verify_export(data, public_bytes(key))
    assert not result.store_ok and result.body["store"]["bad_records"] == 1
    assert result.readings == [(10, 100)]  # the forged reading is not exported
