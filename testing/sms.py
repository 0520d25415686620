"""A test meter that speaks the real protocol, and what the tests read of the gateway's answers
(the `test_meter` and `post_sms` fixtures are in `testing.plugin`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from meteragent.protocol import (
    Ack,
    KeyState,
    ReplayWindow,
    Report,
    SessionKeys,
    decode_downlink,
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
