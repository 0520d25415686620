"""Gateway adapters: turn a gateway's HTTP request into an InboundSms, after authenticating
the gateway (S9). Kannel is the one in use; another gateway adds a class here."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import constant_time
from django.conf import settings
from django.http import HttpRequest

from audit.context import client_ip

MAX_BODY_BYTES = 2048  # a whole concatenated SMS is far smaller; anything bigger is hostile


class GatewayRejected(Exception):
    """The request does not come from our gateway, or is not a gateway request at all."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class InboundSms:
    gateway: str
    gateway_id: str
    sender: str
    receiver: str
    payload: bytes
    udh: bytes
    coding: int | None
    smsc: str
    gateway_time: datetime | None


class GatewayAdapter(Protocol):
    name: str

    def authenticate(self, request: HttpRequest) -> None: ...

    def parse(self, request: HttpRequest) -> InboundSms: ...


def _raw_query(request: HttpRequest) -> dict[str, bytes]:
    # Django decodes query strings as UTF-8, which corrupts binary values (the UDH); decode the
    # raw query string to bytes ourselves.
    raw = request.META.get("QUERY_STRING", "")
    # Latin-1 maps every percent-decoded byte to one character, so encoding back is lossless.
    pairs = parse_qsl(raw, keep_blank_values=True, encoding="latin-1", errors="strict")
    return {key: value.encode("latin-1") for key, value in pairs}


def _address_allowed(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net) for net in settings.SMS_GATEWAY_ALLOWED_IPS)


def _text(values: dict[str, bytes], key: str, limit: int = 64) -> str:
    return values.get(key, b"").decode("latin-1").strip()[:limit]


class KannelAdapter:
    """Kannel smsbox `post-url`: the message body is the POST body (8-bit bytes intact); the
    sender, receiver, SMSC, message id, time, coding and UDH come as Kannel escapes in the
    query string (see e2e/README.md for the exact request), the shared secret likewise."""

    name = "kannel"

    def authenticate(self, request: HttpRequest) -> None:
        if not _address_allowed(client_ip(request)):
            raise GatewayRejected("address not allowed", 403)
        expected = settings.SMS_GATEWAY_SECRET.encode()
        given = _raw_query(request).get("secret", b"")
        if not expected or not constant_time.bytes_eq(given, expected):
            raise GatewayRejected("bad gateway secret", 403)

    def parse(self, request: HttpRequest) -> InboundSms:
        if request.method != "POST":
            raise GatewayRejected("POST expected", 405)
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            raise GatewayRejected("body too large", 413)
        query = _raw_query(request)
        sender = _text(query, "from") or request.headers.get("X-Kannel-From", "")[:32]
        if not sender:
            raise GatewayRejected("no sender", 400)
        coding_text = _text(query, "coding") or request.headers.get("X-Kannel-Coding", "")
        try:
            coding = int(coding_text) if coding_text else None
        except ValueError:
            raise GatewayRejected("bad coding", 400) from None
        payload = request.body
        return InboundSms(
            gateway=self.name,
            gateway_id=_text(query, "id", 128),
            sender=sender,
            receiver=_text(query, "to"),
            payload=payload,
            udh=query.get("udh", b"")[:140],
            coding=coding,
            smsc=_text(query, "smsc"),
            gateway_time=_parse_time(_text(query, "time")),
        )


def _parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


ADAPTERS: dict[str, GatewayAdapter] = {"kannel": KannelAdapter()}
