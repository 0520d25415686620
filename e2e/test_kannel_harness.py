"""End-to-end checks of the Kannel harness against the real bearerbox + smsbox.

Run:  .venv/bin/python -m pytest -p no:django -m kannel e2e/test_kannel_harness.py
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.harness.http_capture import CapturedRequest, CaptureServer, always
from e2e.harness.kannel import INSTALL_HINT, KannelGateway, kannel_installed
from e2e.harness.smsc import FakeSmscClient, format_mo_line, parse_mt_line

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHORT_CODE = "12345"
HTTP_QUEUE_DELAY = 2  # seconds between smsbox's re-POSTs of a failed MO


@dataclass
class Rig:
    gateway: KannelGateway
    webhook: CaptureServer
    smsc: FakeSmscClient

    def from_sender(self, sender: str) -> list[CapturedRequest]:
        return [r for r in self.webhook.requests if r.header("X-Kannel-From") == sender]

    def wait_from(self, sender: str, count: int, timeout: float) -> list[CapturedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.from_sender(sender)
            if len(got) >= count:
                return got
            self.webhook.wait_for(len(self.webhook.requests) + 1, timeout=0.2)
        return self.from_sender(sender)


def _require_kannel() -> None:
    if kannel_installed():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(INSTALL_HINT)
    pytest.skip(INSTALL_HINT)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One gateway for the module: starting and stopping Kannel costs about a second."""
    _require_kannel()
    workdir = tmp_path_factory.mktemp("kannel")
    with CaptureServer() as webhook:
        gateway = KannelGateway.on_free_ports(
            workdir,
            inbound_url=webhook.url("/sms/kannel/inbound?gateway=test"),
            dlr_url_base=webhook.url("/sms/kannel/dlr"),
            http_request_retry=3,
            http_queue_delay=HTTP_QUEUE_DELAY,
        )
        with gateway, FakeSmscClient(gateway.smsc_port) as smsc:
            gateway.wait_smsc_online()
            yield Rig(gateway, webhook, smsc)


@pytest.fixture
def kannel(rig: Rig) -> Rig:
    rig.webhook.responder = always(200)
    return rig


def _nasty_140() -> bytes:
    # One full 8-bit SMS: every byte that could trip URL, line or charset handling.
    return bytes(range(0x00, 0x46)) + bytes(range(0xBA, 0x100))


# --- protocol unit tests (no Kannel needed) -----------------------------------------------


def test_mo_line_is_url_encoded_data_and_round_trips() -> None:
    payload = bytes(range(256))
    line = format_mo_line("+447700900123", SHORT_CODE, payload)
    assert line.startswith(b"+447700900123 12345 data %00%01")
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.count(b" ") == 3
    parsed = parse_mt_line(line)
    assert (parsed.sender, parsed.receiver, parsed.type) == ("+447700900123", SHORT_CODE, "data")
    assert parsed.payload == payload


def test_mt_line_with_udh_as_kannel_145_writes_it() -> None:
    mt = parse_mt_line(b"12345 +4477 udh %06%05%04%0B%84%23%F0 data hi+there%2B\n")
    assert mt.udh == b"\x06\x05\x04\x0b\x84\x23\xf0"
    assert mt.payload == b"hi there+"


def test_number_with_space_is_refused() -> None:
    with pytest.raises(ValueError):
        format_mo_line("+44 77", SHORT_CODE, b"x")


# --- against the real Kannel --------------------------------------------------------------


@pytest.mark.kannel
def test_mo_all_256_byte_values_reach_webhook_intact(kannel: Rig) -> None:
    sender = "+447700900101"
    payload = bytes(range(256))
    kannel.smsc.send_mo(sender, SHORT_CODE, payload)
    reqs = kannel.wait_from(sender, 1, timeout=10)
    assert len(reqs) == 1, kannel.gateway.logs()
    req = reqs[0]
    assert req.method == "POST"
    assert req.body == payload
    assert req.header("Content-Type") == "application/octet-stream"
    assert req.header("X-Kannel-Coding") == "1"
    assert req.header("X-Kannel-To") == SHORT_CODE
    query = req.query
    assert query["gateway"] == "test"  # the caller's own query survives
    assert query["from"] == sender  # %p keeps the leading '+'
    assert query["to"] == SHORT_CODE
    assert query["coding"] == "1"
    assert query["smsc"] == "fake"
    assert query["udh"] == ""
    assert len(query["id"]) == 36  # %I is a UUID


@pytest.mark.kannel
def test_mo_udh_arrives_url_encoded_in_header_and_query(kannel: Rig) -> None:
    sender = "+447700900102"
    udh = b"\x06\x05\x04\x0b\x84\x23\xf0"  # port addressing, not concatenation
    kannel.smsc.send_mo(sender, SHORT_CODE, b"\x00\xff", udh=udh)
    (req,) = kannel.wait_from(sender, 1, timeout=10)
    assert req.body == b"\x00\xff"
    assert req.header("X-Kannel-UDH") == "%06%05%04%0B%84%23%F0"
    assert req.raw_query["udh"] == udh


@pytest.mark.kannel
def test_mt_through_sendsms_arrives_at_smsc_intact(kannel: Rig) -> None:
    payload = _nasty_140()
    result = kannel.gateway.send_mt("+447700900103", payload, from_=SHORT_CODE)
    assert result.status == 202, result
    mt = kannel.smsc.receive_mt(timeout=10)
    assert mt is not None, kannel.gateway.logs()
    assert (mt.sender, mt.receiver, mt.type, mt.udh) == (SHORT_CODE, "+447700900103", "data", None)
    assert mt.payload == payload
    assert not kannel.smsc.errors


@pytest.mark.kannel
def test_sendsms_rejects_wrong_password(kannel: Rig) -> None:
    gw = kannel.gateway
    good = gw.sendsms_password
    gw.sendsms_password = "wrong"
    try:
        result = gw.send_mt("+447700900104", b"x", from_=SHORT_CODE)
    finally:
        gw.sendsms_password = good
    assert result.status == 403, result
    assert kannel.smsc.receive_mt(timeout=1) is None


@pytest.mark.kannel
def test_503_answer_leads_to_later_redelivery(kannel: Rig) -> None:
    sender = "+447700900105"
    attempts: list[float] = []

    def busy_once(req: CapturedRequest, _n: int) -> tuple[int, bytes]:
        if req.header("X-Kannel-From") != sender:
            return 200, b""
        attempts.append(time.monotonic())
        return (503, b"busy") if len(attempts) == 1 else (200, b"")

    kannel.webhook.responder = busy_once
    kannel.smsc.send_mo(sender, SHORT_CODE, b"\x01\x02\x03")
    reqs = kannel.wait_from(sender, 2, timeout=HTTP_QUEUE_DELAY + 8)
    assert len(reqs) == 2, kannel.gateway.logs()
    first, second = reqs
    assert first.body == second.body == b"\x01\x02\x03"
    assert first.query["id"] == second.query["id"]  # same message, so the webhook can dedupe
    assert attempts[1] - attempts[0] >= HTTP_QUEUE_DELAY - 0.5
    # Answered 200 the second time: no third attempt.
    time.sleep(HTTP_QUEUE_DELAY + 0.5)
    assert len(kannel.from_sender(sender)) == 2


@pytest.mark.kannel
def test_dlr_mask_gives_accepted_and_delivered_reports(kannel: Rig) -> None:
    to = "+447700900106"
    dlr_url = kannel.webhook.url("/sms/kannel/dlr?outbox=77&type=%d&fid=%F&reply=%A")
    result = kannel.gateway.send_mt(to, b"\x00ack", from_=SHORT_CODE, dlr_mask=31, dlr_url=dlr_url)
    assert result.status == 202, result
    assert kannel.smsc.receive_mt(timeout=10) is not None
    deadline = time.monotonic() + 10
    dlrs: list[CapturedRequest] = []
    while time.monotonic() < deadline and len(dlrs) < 2:
        dlrs = [r for r in kannel.webhook.requests if "outbox=77" in r.path]
        time.sleep(0.1)
    assert sorted(r.query["type"] for r in dlrs) == ["1", "8"], kannel.gateway.logs()
    assert all(r.method == "GET" and r.body == b"" for r in dlrs)


@pytest.mark.kannel
def test_live_request_has_the_recorded_fixture_shape(kannel: Rig) -> None:
    """The fixture replayed by webhook unit tests must match what this Kannel sends."""
    fixture = json.loads((FIXTURES / "kannel_mo_request.json").read_text())
    sender = fixture["sender"]
    kannel.smsc.send_mo(sender, fixture["receiver"], bytes.fromhex(fixture["body_hex"]))
    (req,) = kannel.wait_from(sender, 1, timeout=10)
    assert req.method == fixture["method"]
    assert req.body.hex() == fixture["body_hex"]
    # Same header names in the same order, same query keys; values like id/time differ.
    assert [k for k, _ in req.headers if k != "Host"] == [
        k for k, _ in fixture["headers"] if k != "Host"
    ]
    fixture_req = CapturedRequest("POST", fixture["path"], [], b"", 0.0)
    assert set(req.query) - {"gateway"} == set(fixture_req.query) - {"gateway"}


@pytest.mark.kannel
def test_gateway_stops_its_processes(tmp_path: Path) -> None:
    _require_kannel()
    with CaptureServer() as webhook:
        gw = KannelGateway.on_free_ports(tmp_path, inbound_url=webhook.url("/in"))
        with gw:
            pids = list(gw.pids.values())
            assert len(pids) == 2
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert (tmp_path / "bearerbox.log").stat().st_size > 0  # logs kept for post-mortems
    assert gw.config_path is not None and not gw.config_path.exists()  # run dir removed


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
