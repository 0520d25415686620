"""The gateway delivering one message several times at once (its retry racing the first
attempt): stored and processed once, every delivery answered 200."""

from urllib.parse import quote_from_bytes

import pytest
from django.test import Client

from readings.models import Reading
from smsgateway.models import InboundMessage, OutboundMessage
from testing.processes import all_at_once

from .conftest import hours_back


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_gateway_message_delivered_eight_times_at_once_is_stored_once(test_meter, settings):
    meter = test_meter()
    frame = meter.report(hours_back(5))
    query = {
        "secret": settings.SMS_GATEWAY_SECRET,
        "from": meter.msisdn,
        "to": settings.SMS_GATEWAY_MSISDN,
        "id": "kannel-race-1",
        "coding": "1",
        "smsc": "fake",
    }
    url = "/sms/kannel/inbound?" + "&".join(
        f"{k}={quote_from_bytes(str(v).encode(), safe='')}" for k, v in query.items()
    )

    def deliver():
        client = Client(raise_request_exception=False)
        return client.post(url, data=frame, content_type="application/octet-stream")

    responses = all_at_once([deliver] * 8)
    assert {r.status_code for r in responses} == {200}
    words = sorted(r.text.split(" ")[0] for r in responses)
    assert words.count("queued") == 1 and words.count("duplicate") == 7
    assert InboundMessage.objects.get().status == "accepted"
    assert Reading.objects.filter(meter=meter.meter).count() == 5
    assert OutboundMessage.objects.count() == 1  # one ack
