"""Property tests: random garbage and random valid content never escape ProtocolError."""

from __future__ import annotations

import contextlib
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meteragent.protocol import (
    Direction,
    KeyState,
    ProtocolError,
    ReplayWindow,
    derive_keys,
    open_frame,
)
from meteragent.protocol.frame import seal_payload
from meteragent.protocol.messages import PAYLOAD_BYTES, decode_payload, encode_payload

KEYS = derive_keys(bytes(range(32)), 1)


def lookup(key_id: int) -> KeyState | None:
    return KeyState(KEYS, ReplayWindow()) if key_id in (0, 1, 0x0101) else None


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(min_size=0, max_size=400), st.sampled_from(list(Direction)))
def test_random_bytes_only_raise_protocol_errors(data: bytes, direction: Direction) -> None:
    try:
        open_frame(data, direction=direction, lookup=lookup)
    except ProtocolError:
        pass
    else:  # pragma: no cover - would need a 2**-128 forgery
        raise AssertionError("random bytes verified")


@FAST
@given(st.binary(min_size=133, max_size=133), st.sampled_from(list(Direction)))
def test_random_140_byte_frames_with_valid_header(body: bytes, direction: Direction) -> None:
    header = bytes([0x10 | (0x08 if direction else 0), 0, 1, 0, 0, 0, 7])
    try:
        open_frame(header + body, direction=direction, lookup=lookup)
    except ProtocolError as err:
        assert type(err).__name__ == "AuthenticationFailed"


# Authentic frames with arbitrary plaintext reach the payload parser: it must only ever
# return a valid message or raise ProtocolError (here: Malformed).
plaintexts = st.one_of(
    st.binary(min_size=PAYLOAD_BYTES, max_size=PAYLOAD_BYTES),
    st.tuples(st.sampled_from([0x01, 0x02, 0x81, 0x82]), st.binary(max_size=PAYLOAD_BYTES - 1)).map(
        lambda t: (bytes([t[0]]) + t[1]).ljust(PAYLOAD_BYTES, b"\0")
    ),
)


@FAST
@given(plaintexts, st.sampled_from(list(Direction)))
def test_authentic_garbage_plaintext(plaintext: bytes, direction: Direction) -> None:
    frame = seal_payload(plaintext, keys=KEYS, direction=direction, counter=5)
    try:
        opened = open_frame(frame, direction=direction, lookup=lookup)
    except ProtocolError as err:
        assert type(err).__name__ == "Malformed"
    else:
        # Whatever parses must re-encode to the identical plaintext (one encoding per message).
        assert encode_payload(opened.message) == plaintext


@FAST
@given(st.binary(max_size=200))
def test_payload_parser_on_any_length(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_payload(data)


def test_no_django_import_anywhere_in_the_protocol_package() -> None:
    code = (
        "import sys, pkgutil, importlib, meteragent.protocol as p\n"
        "for m in pkgutil.walk_packages(p.__path__, 'meteragent.protocol.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'django' not in sys.modules, [m for m in sys.modules if 'django' in m]\n"
        "print('ok', len([m for m in sys.modules if m.startswith('meteragent.protocol')]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
