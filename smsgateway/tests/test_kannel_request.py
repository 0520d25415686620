"""The webhook understands the request Kannel really sends (recorded from Kannel 1.4.5)."""

import json
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest

from smsgateway.models import InboundMessage

from .conftest import hours_back, outcome

FIXTURE = Path(__file__).resolve().parents[2] / "e2e" / "fixtures" / "kannel_mo_request.json"


@pytest.mark.django_db
def test_a_recorded_kannel_request_with_our_frame_is_accepted(client, test_meter, settings):
    recorded = json.loads(FIXTURE.read_text())
    meter = test_meter()
    frame = meter.report(hours_back(6))
    query = dict(parse_qsl(urlsplit(recorded["path"]).query, keep_blank_values=True))
    query.update({"from": meter.msisdn, "secret": settings.SMS_GATEWAY_SECRET})
    headers = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in recorded["headers"]
        if name.lower().startswith("x-kannel")
    }
    headers["HTTP_X_KANNEL_FROM"] = meter.msisdn
    response = client.post(
        f"/sms/kannel/inbound?{urlencode(query, quote_via=quote)}",
        data=frame,
        content_type=dict(recorded["headers"])["Content-Type"],
        **headers,
    )
    assert response.status_code == 200 and outcome(response) == "accepted"
    message = InboundMessage.objects.get()
    assert message.dedupe_key == f"id:{query['id']}"
    assert message.sender == meter.msisdn and message.smsc == "fake"
    assert message.gateway_time is not None and bytes(message.payload) == frame
