"""Two agents of the demo fleet against a minimal webhook that plays the server with
meteragent.protocol: frames flow in over HTTP exactly as Kannel posts them, acks flow back
through the outbox file, and the agents mark their readings acknowledged."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meteragent.bundle import Bundle
from meteragent.protocol import (
    Ack,
    CounterReservation,
    DeviceInfo,
    KeyState,
    MemoryCounterStore,
    ProtocolError,
    ReplayWindow,
    Report,
    decode_uplink,
    derive_keys,
    encode_downlink,
)
from meteragent.sim.fleet import Fleet
from meteragent.store import Store

UTILITY = "+447700900100"
SECRET = "s3cret&=/ü"


class Server:
    def __init__(self, outbox, meters: dict[str, Bundle]) -> None:
        self.outbox = outbox
        self.meters = meters
        self.windows = {m: ReplayWindow() for m in meters}
        self.down = {m: CounterReservation(MemoryCounterStore()) for m in meters}
        self.readings: dict[str, dict[int, int]] = {m: {} for m in meters}
        self.device_info: dict[str, DeviceInfo] = {}
        self.queries: list[dict[str, list[str]]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def handle(self, query: dict[str, list[str]], body: bytes) -> int:
        with self.lock:
            self.queries.append(query)
            sender = query["from"][0]
            if query.get("secret") != [SECRET] or sender not in self.meters:
                return 403
            bundle = self.meters[sender]
            keys = derive_keys(bundle.root_key, bundle.key_id)
            try:
                opened = decode_uplink(
                    body,
                    lambda kid: (
                        KeyState(keys, self.windows[sender]) if kid == keys.key_id else None
                    ),
                )
            except ProtocolError as exc:
                self.errors.append(type(exc).__name__)
                return 200
            self.windows[sender] = opened.window
            msg = opened.message
            if isinstance(msg, DeviceInfo):
                self.device_info[sender] = msg
            elif isinstance(msg, Report):
                for r in msg.readings:
                    self.readings[sender][r.hour] = r.wh
                if msg.remaining == 0 and self.readings[sender]:
                    ack = Ack(opened.header.counter, max(self.readings[sender]), int(time.time()))
                    frame = encode_downlink(ack, keys=keys, counter=self.down[sender].next())
                    line = {"to": sender, "payload": frame.hex(), "from": UTILITY}
                    with self.outbox.open("a") as fh:
                        fh.write(json.dumps(line) + "\n")
            return 200


@pytest.fixture
def world(tmp_path):
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    meters = {}
    for i, msisdn in enumerate(["+447700900201", "+447700900202"]):
        bundle = Bundle(
            meter_number=f"FLEETMETER{i:015d}",
            key_id=1,
            root_key=bytes([i + 1]) * 32,
            utility_msisdn=UTILITY,
            issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        (bundles / f"m{i}.json").write_bytes(bundle.to_bytes())
        (bundles / f"m{i}.json.msisdn").write_text(msisdn + "\n")
        meters[msisdn] = bundle
    outbox = tmp_path / "outbox.jsonl"
    server = Server(outbox, meters)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Type"] == "application/octet-stream"
            status = server.handle(urllib.parse.parse_qs(parsed.query), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/sms/kannel/"
    yield tmp_path, bundles, outbox, url, server, meters
    httpd.shutdown()
    httpd.server_close()


def test_two_agents_send_over_http_and_acks_mark_readings(world) -> None:
    tmp_path, bundles, outbox, url, server, meters = world
    fleet = Fleet(
        bundles=bundles,
        webhook=url,
        secret=SECRET,
        outbox=outbox,
        data=tmp_path / "data",
        backfill_hours=6,
        send_every_seconds=1.0,
        tail_interval=0.05,
    )
    assert set(fleet.meters) == set(meters)
    fleet.start()
    try:
        deadline = time.monotonic() + 20
        done = False
        while time.monotonic() < deadline and not done:
            time.sleep(0.2)
            done = all(len(server.readings[m]) >= 6 for m in meters) and all(
                _acked(tmp_path, b) for b in meters.values()
            )
    finally:
        fleet.stop()
        fleet.join(10)
    assert all(not m.thread.is_alive() for m in fleet.meters.values())  # stopped cleanly
    assert not server.errors
    assert done
    for msisdn, bundle in meters.items():
        assert server.device_info[msisdn].software_version
        with Store(tmp_path / "data" / bundle.meter_number / "meter.db") as store:
            assert server.readings[msisdn] == {
                r.hour: r.wh for r in store.readings() if r.hour in server.readings[msisdn]
            }
    # Exactly Kannel's post-url parameters, percent-encoded.
    q = server.queries[0]
    assert set(q) == {"secret", "from", "to", "id", "coding", "smsc"}
    assert q["to"] == [UTILITY] and q["coding"] == ["1"] and q["smsc"] == ["demo"]
    # Readings differ between meters: each is seeded by its own meter number.
    a, b = (server.readings[m] for m in meters)
    assert a != b


def _acked(tmp_path, bundle: Bundle) -> bool:
    path = tmp_path / "data" / bundle.meter_number / "meter.db"
    if not path.exists():
        return False
    with Store(path) as store:
        latest = store.latest_reading()
        return latest is not None and store.acknowledged_up_to() == latest.hour
