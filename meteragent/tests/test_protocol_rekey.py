"""Over-the-air rekey: both sides derive the same key, lost messages recover, FS properties."""

from __future__ import annotations

import pytest

from meteragent.protocol import (
    KeyState,
    Malformed,
    Reading,
    RekeyAccept,
    RekeyInit,
    ReplayWindow,
    Report,
    ServerRekey,
    UnknownKeyId,
    decode_downlink,
    decode_uplink,
    derive_keys,
    encode_downlink,
    encode_uplink,
    meter_handle_init,
)
from meteragent.protocol.rekey import derive_next_root

OLD = derive_keys(bytes(range(32)), 1)


def only(keys, window=ReplayWindow()):  # noqa: B008 - immutable default
    return lambda key_id: KeyState(keys, window) if key_id == keys.key_id else None


def test_full_exchange_over_frames() -> None:
    server = ServerRekey(OLD, 2)
    init_frame = encode_downlink(server.init_message, keys=OLD, counter=5)
    opened = decode_downlink(init_frame, only(OLD))
    assert isinstance(opened.message, RekeyInit)
    pending = meter_handle_init(OLD, opened.message, opened.header.counter)
    accept_frame = encode_uplink(pending.accept, keys=OLD, counter=11)
    got = decode_uplink(accept_frame, only(OLD)).message
    assert isinstance(got, RekeyAccept) and got.answers_counter == 5
    new_root = server.finish(got)
    assert new_root == pending.new_root and len(new_root) == 32
    new = derive_keys(new_root, 2)
    assert new.uplink_key != OLD.uplink_key
    # The meter's next report travels under the new key id; the server can open it.
    report = encode_uplink(Report(1_767_225_600, (Reading(490_896, 1),)), keys=new, counter=1)
    assert decode_uplink(report, only(new)).header.key_id == 2
    with pytest.raises(UnknownKeyId):
        decode_uplink(report, only(OLD))
    with pytest.raises(ValueError):
        server.finish(got)  # the ephemeral private key is gone
    with pytest.raises(ValueError):
        server.private_bytes()


def test_lost_accept_repeat_init_gives_same_key() -> None:
    server = ServerRekey(OLD, 2)
    pending = meter_handle_init(OLD, server.init_message, 5)
    # ACCEPT lost; server resends the same INIT (new counter); the meter answers the same way.
    again = meter_handle_init(OLD, server.init_message, 6, pending)
    assert again is pending
    assert server.finish(again.accept) == pending.new_root


def test_server_restart_restores_exchange() -> None:
    server = ServerRekey(OLD, 2)
    saved = server.private_bytes()
    restored = ServerRekey.restore(OLD, 2, saved)
    pending = meter_handle_init(OLD, restored.init_message, 5)
    assert restored.finish(pending.accept) == pending.new_root


def test_abandoned_exchange_replaced_by_a_new_one() -> None:
    first = ServerRekey(OLD, 2)
    pending = meter_handle_init(OLD, first.init_message, 5)
    second = ServerRekey(OLD, 3)  # server lost the first exchange and starts over
    pending2 = meter_handle_init(OLD, second.init_message, 6, pending)
    assert pending2.new_key_id == 3 and pending2.new_root != pending.new_root
    assert second.finish(pending2.accept) == pending2.new_root


def test_fresh_ephemerals_each_time() -> None:
    a = meter_handle_init(OLD, ServerRekey(OLD, 2).init_message, 5)
    b = meter_handle_init(OLD, ServerRekey(OLD, 2).init_message, 5)
    assert a.accept.meter_public != b.accept.meter_public
    assert a.new_root != b.new_root


def test_new_root_depends_on_the_current_root() -> None:
    # Same ephemerals under another current root give another key (binding to the old key).
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    s = X25519PrivateKey.from_private_bytes(bytes([1] * 32))
    m = X25519PrivateKey.from_private_bytes(bytes([2] * 32))
    other = derive_keys(bytes(32), 1)
    r1 = meter_handle_init(OLD, ServerRekey(OLD, 2, s).init_message, 5, private=m)
    r2 = meter_handle_init(other, ServerRekey(other, 2, s).init_message, 5, private=m)
    assert r1.new_root != r2.new_root


def test_mismatched_and_degenerate_inputs() -> None:
    server = ServerRekey(OLD, 2)
    with pytest.raises(Malformed):
        server.finish(RekeyAccept(5, 3, bytes(range(32))))
    with pytest.raises(Malformed):
        meter_handle_init(OLD, RekeyInit(1, bytes(range(32))), 5)  # same key id
    with pytest.raises(Malformed):  # low-order point: all-zero shared secret
        meter_handle_init(OLD, RekeyInit(2, bytes(32)), 5)
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    with pytest.raises(Malformed):
        derive_next_root(
            X25519PrivateKey.generate(),
            bytes(32),
            current=OLD,
            new_key_id=2,
            server_public=bytes(32),
            meter_public=bytes(32),
        )
    with pytest.raises(ValueError):
        ServerRekey(OLD, 1)


def test_pending_rekey_repr_hides_the_key() -> None:
    pending = meter_handle_init(OLD, ServerRekey(OLD, 2).init_message, 5)
    assert pending.new_root.hex() not in repr(pending)
    assert OLD.uplink_key.hex() not in repr(OLD)
