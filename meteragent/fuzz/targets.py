"""The fuzzed function and its seed corpus, without atheris (so the corpus can be replayed
under the stdlib tracer for line coverage, see ``replay_coverage``)."""

from __future__ import annotations

import json
from pathlib import Path

from meteragent.protocol import Direction, KeyState, ProtocolError, ReplayWindow, derive_keys
from meteragent.protocol.frame import open_frame, seal_payload
from meteragent.protocol.messages import PAYLOAD_BYTES, decode_payload, encode_payload
from meteragent.protocol.varint import decode_uvarint, encode_uvarint
from meteragent.protocol.vectors import VECTORS_PATH

KEYS = derive_keys(bytes(range(32)), 1)
WINDOW = ReplayWindow().accept(40).accept(3)


def _lookup(key_id: int) -> KeyState | None:
    return KeyState(KEYS, WINDOW) if key_id == 1 else None


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 5, data[1:]
    try:
        if mode == 0:
            open_frame(rest, direction=Direction(data[0] >> 7), lookup=_lookup)
        elif mode == 1:
            plaintext = rest[:PAYLOAD_BYTES].ljust(PAYLOAD_BYTES, b"\0")
            direction = Direction(data[0] >> 7)
            frame = seal_payload(plaintext, keys=KEYS, direction=direction, counter=41)
            opened = open_frame(frame, direction=direction, lookup=_lookup)
            if encode_payload(opened.message) != plaintext:
                raise AssertionError("parsed message does not re-encode to its plaintext")
        elif mode == 2:
            msg = decode_payload(rest)
            if encode_payload(msg) != rest:
                raise AssertionError("parsed message does not re-encode to its plaintext")
        elif mode == 3:
            value, end = decode_uvarint(rest, 0)
            if encode_uvarint(value) != rest[:end]:
                raise AssertionError("varint is not canonical")
        else:
            window = ReplayWindow()
            for i in range(0, len(rest) - 3, 4):
                counter = int.from_bytes(rest[i : i + 4], "big") or 1
                try:
                    window = window.accept(counter)
                except ProtocolError:
                    continue
                window = ReplayWindow.from_tuple(window.to_tuple())
    except ProtocolError:
        pass


def seed_corpus(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    frames = vectors["messages"] + vectors["rekey"]["frames"]
    for n, vec in enumerate(frames + vectors["negative"]):
        frame = bytes.fromhex(vec["frame"])
        down = 0x80 if vec["direction"] == "DOWNLINK" else 0
        (corpus / f"frame-{n}").write_bytes(bytes([0 | down]) + frame)
    for n, vec in enumerate(frames):
        pt = bytes.fromhex(vec["plaintext"])
        down = 0x80 if vec["direction"] == "DOWNLINK" else 0
        (corpus / f"plain-{n}").write_bytes(bytes([1 | down]) + pt)
        (corpus / f"payload-{n}").write_bytes(bytes([2]) + pt)
    (corpus / "varint").write_bytes(bytes([3]) + encode_uvarint(300))
    (corpus / "window").write_bytes(bytes([4]) + bytes(range(1, 33)))
