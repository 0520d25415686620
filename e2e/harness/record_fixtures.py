"""Record what the installed Kannel really sends, as fixtures for webhook unit tests.

    .venv/bin/python -m e2e.harness.record_fixtures      # rewrites e2e/fixtures/kannel_*.json

kannel_mo_request.json: one MO POST (140-byte 8-bit payload) exactly as smsbox sent it.
kannel_dlr_requests.json: the GET requests to a dlr-url after a sendsms with dlr-mask=31.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from e2e.harness.http_capture import CapturedRequest, CaptureServer
from e2e.harness.kannel import KannelGateway
from e2e.harness.smsc import FakeSmscClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
METER_NUMBER = "+447700900123"
SHORT_CODE = "12345"
# 140 bytes (one full 8-bit SMS) covering control bytes, space, '%', '+', '&', '=' and 0xBA..0xFF.
MO_PAYLOAD = bytes(range(0x00, 0x46)) + bytes(range(0xBA, 0x100))
INBOUND_PATH = "/sms/kannel/inbound?gateway=kannel-1"


def _fixture(req: CapturedRequest, **extra: object) -> dict[str, object]:
    data = req.to_fixture()
    data.update(extra)
    return data


def record(fixtures: Path = FIXTURES) -> tuple[CapturedRequest, list[CapturedRequest]]:
    assert len(MO_PAYLOAD) == 140
    fixtures.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir, CaptureServer() as srv:
        gw = KannelGateway.on_free_ports(
            workdir,
            inbound_url=srv.url(INBOUND_PATH),
            dlr_url_base=srv.url("/sms/kannel/dlr?outbox=42"),
        )
        with gw, FakeSmscClient(gw.smsc_port) as smsc:
            gw.wait_smsc_online()
            smsc.send_mo(METER_NUMBER, SHORT_CODE, MO_PAYLOAD)
            (mo,) = srv.wait_for(1, timeout=10)
            assert mo.body == MO_PAYLOAD, "Kannel altered the binary body"
            result = gw.send_mt(METER_NUMBER, b"\x00ack\xff", from_=SHORT_CODE, dlr_mask=31)
            assert result.status == 202, result
            srv.wait_for(3, timeout=10)
            time.sleep(0.5)
            dlrs = [r for r in srv.requests if r.path.startswith("/sms/kannel/dlr")]
    note = (
        "Captured from Kannel "
        "1.4.5 (Debian bookworm) by e2e/harness/record_fixtures.py; see e2e/README.md."
    )
    (fixtures / "kannel_mo_request.json").write_text(
        json.dumps(
            _fixture(
                mo,
                note=note,
                sender=METER_NUMBER,
                receiver=SHORT_CODE,
                inbound_url_configured=INBOUND_PATH,
                remote_addr=mo.client,
            ),
            indent=2,
        )
        + "\n"
    )
    (fixtures / "kannel_dlr_requests.json").write_text(
        json.dumps(
            {
                "note": note + " sendsms with dlr-mask=31 and dlr-url "
                "/sms/kannel/dlr?outbox=42 plus the harness's DLR escapes.",
                "requests": [_fixture(r) for r in dlrs],
            },
            indent=2,
        )
        + "\n"
    )
    return mo, dlrs


if __name__ == "__main__":
    mo, dlrs = record()
    print(mo.method, mo.path)
    for r in dlrs:
        print(r.method, r.path)
