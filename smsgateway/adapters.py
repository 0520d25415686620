"""Gateway adapters: turn a gateway's HTTP request into an InboundSms, after authenticating
the gateway (S9). Kannel is the one in use; another gateway adds a class here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote_to_bytes

from cryptography.hazmat.primitives import constant_time
from django.conf import settings
from django.http import HttpRequest

from utility.client_address import address_in, client_address_from_meta

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


class GatewayRequest:
    """What an adapter needs of an HTTP request, read from a WSGI environ (Django's
    `request.META` is one): the ingest service's fast path has no HttpRequest."""

    def __init__(self, meta: Mapping[str, Any], read_body: Callable[[], bytes]) -> None:
        self.meta = meta
        self.method: str = meta.get("REQUEST_METHOD", "")
        self._read_body = read_body
        self._query: dict[str, bytes] | None = None

    @classmethod
    def from_django(cls, request: HttpRequest) -> GatewayRequest:
        return cls(request.META, lambda: request.body)

    @property
    def client_ip(self) -> str | None:
        return client_address_from_meta(self.meta)

    @property
    def content_length(self) -> int:
        try:
            return int(self.meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise GatewayRejected("bad content length", 400) from None

    @property
    def query(self) -> dict[str, bytes]:
        # Django decodes query strings as UTF-8, which corrupts binary values (the UDH):
        # decode the raw query string to bytes ourselves. Latin-1 maps every percent-decoded
        # byte to one character, so encoding back is lossless.
        if self._query is None:
            text = self.meta.get("QUERY_STRING", "")
            try:
                self._query = query_bytes(text.encode("latin-1"))
            except UnicodeEncodeError:  # not a WSGI string: decoded by someone else's rule
                pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1")
                self._query = {key: value.encode("latin-1") for key, value in pairs}
        return self._query

    def header(self, name: str) -> str:
        return self.meta.get("HTTP_" + name.upper().replace("-", "_"), "")

    def body(self) -> bytes:
        return self._read_body()


def query_bytes(query: bytes) -> dict[str, bytes]:
    """A raw query string's fields, as `parse_qsl(..., keep_blank_values=True,
    encoding="latin-1")` reads its latin-1 text, values as bytes (the last of a repeated
    name wins), at a fraction of the cost: this runs for every message."""
    fields: dict[str, bytes] = {}
    # As latin-1 text (one character per byte) the split and the look for escapes are the
    # interpreter's cheapest; only a part with an escape in it is unquoted.
    for field in query.decode("latin-1").replace("+", " ").split("&"):
        if field:
            name, _, value = field.partition("=")
            if "%" in name:
                name = unquote_to_bytes(name.encode("latin-1")).decode("latin-1")
            raw = value.encode("latin-1")
            fields[name] = unquote_to_bytes(raw) if "%" in value else raw
    return fields


class GatewayAdapter(Protocol):
    name: str

    def authenticate(self, request: GatewayRequest) -> None: ...

    def parse(self, request: GatewayRequest) -> InboundSms: ...


def _text(values: dict[str, bytes], key: str, limit: int = 64) -> str:
    # NUL cannot be stored in a text column: it would fail the insert, not just this field.
    return values.get(key, b"").decode("latin-1").replace("\x00", "").strip()[:limit]


class KannelAdapter:
    """Kannel smsbox `post-url`: the message body is the POST body (8-bit bytes intact); the
    sender, receiver, SMSC, message id, time, coding and UDH come as Kannel escapes in the
    query string (see e2e/README.md for the exact request), the shared secret likewise."""

    name = "kannel"

    def authenticate(self, request: GatewayRequest) -> None:
        if not _gateway_address(
            request.meta.get("REMOTE_ADDR", ""),
            request.meta.get("HTTP_X_FORWARDED_FOR", ""),
            tuple(settings.TRUSTED_PROXIES),
            tuple(settings.SMS_GATEWAY_ALLOWED_IPS),
        ):
            raise GatewayRejected("address not allowed", 403)
        expected = settings.SMS_GATEWAY_SECRET.encode()
        given = request.query.get("secret", b"")
        if not expected or not constant_time.bytes_eq(given, expected):
            raise GatewayRejected("bad gateway secret", 403)

    def parse(self, request: GatewayRequest) -> InboundSms:
        if request.method != "POST":
            raise GatewayRejected("POST expected", 405)
        if request.content_length > MAX_BODY_BYTES:
            raise GatewayRejected("body too large", 413)
        query = request.query
        sender = _text(query, "from") or request.header("X-Kannel-From")[:32]
        if not sender:
            raise GatewayRejected("no sender", 400)
        coding_text = _text(query, "coding") or request.header("X-Kannel-Coding")
        try:
            coding = int(coding_text) if coding_text else None
        except ValueError:
            raise GatewayRejected("bad coding", 400) from None
        if coding is not None and not 0 <= coding <= 255:
            raise GatewayRejected("bad coding", 400)
        return InboundSms(
            gateway=self.name,
            gateway_id=_text(query, "id", 256),
            sender=sender,
            receiver=_text(query, "to"),
            payload=request.body(),
            udh=query.get("udh", b"")[:140],
            coding=coding,
            smsc=_text(query, "smsc"),
            gateway_time=_parse_time(_text(query, "time")),
        )


@lru_cache(maxsize=256)
def _gateway_address(remote: str, forwarded: str, trusted: tuple, allowed: tuple) -> bool:
    """Whether a request from `remote`, forwarded for `forwarded`, comes from an allowed
    address, by the project's rule (`utility.client_address`). The gateway sends from one or
    two addresses all day: decided once, not per message; the settings are part of the key."""
    meta = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}
    return address_in(client_address_from_meta(meta), allowed)


def _parse_time(value: str) -> datetime | None:
    """Kannel's `%T` (Unix seconds) or `%t` (ISO, UTC). A value that is no time we can store
    is a refusal: the platform's C library answers an out-of-range timestamp with OSError,
    Python's own code with ValueError or OverflowError."""
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise GatewayRejected("bad time", 400) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


ADAPTERS: dict[str, GatewayAdapter] = {"kannel": KannelAdapter()}
