"""A test meter that speaks the real protocol, and a gateway client that posts like Kannel."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes

import pytest
from django.utils import timezone

from devices.tests.conftest import active_meter, kek, make_meter  # noqa: F401  (fixtures)
from meteragent.protocol import (
    Ack,
    Event,
    KeyState,
    ReplayWindow,
    Report,
    SessionKeys,
    decode_downlink,
    derive_keys,
    encode_uplink,
)
from meteragent.protocol import Reading as WireReading
from readings.services import datetime_to_hour
from smsgateway.models import InboundMessage, OutboundMessage


@dataclass
class TestMeter:
    """The meter side of the protocol, as the real agent uses it."""

    meter: object
    keys: SessionKeys
    counter: int = 0
    downlink_windows: dict[int, ReplayWindow] = field(default_factory=dict)  # one per key id

    @property
    def msisdn(self) -> str:
        return self.meter.sim.msisdn

    def frame(self, message) -> bytes:
        self.counter += 1
        return encode_uplink(message, keys=self.keys, counter=self.counter)

    def report(self, readings=(), events=(), *, remaining: int = 0) -> bytes:
        sent_at = int(timezone.now().timestamp())
        wire = tuple(WireReading(h, wh) for h, wh in readings)
        return self.frame(Report(sent_at, wire, tuple(events), remaining=remaining))

    def open_downlink(self, frame: bytes, keys: SessionKeys | None = None):
        keys = keys or self.keys
        window = self.downlink_windows.get(keys.key_id, ReplayWindow())
        opened = decode_downlink(
            frame, lambda key_id: KeyState(keys, window) if key_id == keys.key_id else None
        )
        self.downlink_windows[keys.key_id] = opened.window
        return opened.message


def hours_back(n: int, *, start_wh: int = 1_000_000, step: int = 450) -> list[tuple[int, int]]:
    """n consecutive hourly readings ending at the current hour."""
    now_hour = datetime_to_hour(timezone.now())
    return [(now_hour - n + 1 + i, start_wh + i * step) for i in range(n)]


@pytest.fixture
def test_meter(active_meter):  # noqa: F811
    def make() -> TestMeter:
        meter, root, key_id = active_meter()
        return TestMeter(meter, derive_keys(root, key_id))

    return make


_ids = itertools.count(1)


@pytest.fixture
def post_sms(client, settings):
    """post_sms(sender, payload, **query) → the webhook response, as Kannel's post-url sends."""

    def post(sender: str, payload: bytes, *, gateway_id: str | None = None, secret=None, **extra):
        query = {
            "secret": settings.SMS_GATEWAY_SECRET if secret is None else secret,
            "from": sender,
            "to": settings.SMS_GATEWAY_MSISDN,
            "id": gateway_id or f"kannel-{next(_ids)}",
            "coding": "1",
            "smsc": "fake",
            **extra,
        }
        qs = "&".join(
            f"{k}={quote_from_bytes(v if isinstance(v, bytes) else str(v).encode(), safe='')}"
            for k, v in query.items()
        )
        return client.post(
            f"/sms/kannel/inbound?{qs}", data=payload, content_type="application/octet-stream"
        )

    return post


def outcome(response) -> str:
    """What processing made of a message the webhook queued ("accepted", "rejected replay",
    "part"): the webhook answers once the message is stored, and the tests' eager Celery
    has processed it before the answer returns."""
    assert response.status_code == 200, response.content
    word, _, message_id = response.text.partition(" ")
    assert word == "queued", response.text
    message = InboundMessage.objects.get(pk=int(message_id))
    return f"{message.status} {message.reason}".strip()


def last_ack(test: TestMeter, keys: SessionKeys | None = None) -> Ack:
    outbound = OutboundMessage.objects.filter(meter=test.meter).latest("pk")
    return test.open_downlink(bytes(outbound.payload), keys)


__all__ = ["Event", "TestMeter", "hours_back", "last_ack", "outcome"]
