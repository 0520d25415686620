"""The ingest service's ASGI application (utility/ingest_asgi.py).

The gateway posts every SMS to one route, thousands of times a second at peak. The service
answers that route on its event loop: the gateway is authenticated by the same adapter as the
Django view, the message is stored raw by a group commit (one statement and one commit for
the messages arriving together; each request is answered only once its own message is
durable), and a drain is queued from the drain scheduler's thread. Everything else (delivery
reports, /healthz, any other path or method) is Django's.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.db import connection

from .adapters import ADAPTERS, MAX_BODY_BYTES, GatewayRequest
from .intake import ANSWER_CONTENT_TYPE, accept_async
from .rawstore import AsyncGroupCommit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
INBOUND_ROUTE = re.compile(r"/sms/(?P<gateway>[-a-zA-Z0-9_]+)/inbound")
_CONTENT_TYPE = ANSWER_CONTENT_TYPE.encode()


class IngestApplication:
    def __init__(self, django_application: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.django_application = django_application
        self.group_commit = AsyncGroupCommit(database_connect_kwargs())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        match = INBOUND_ROUTE.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if (
            match is None
            or scope["method"] != "POST"
            or match["gateway"] not in ADAPTERS
            or not settings.SMS_INGEST_ENABLED
        ):
            await self.django_application(scope, receive, send)
            return
        read = await _read_body(receive, limit=MAX_BODY_BYTES)
        if read is None:
            return  # the gateway went away before sending the whole request: it will retry
        body, complete = read
        request = GatewayRequest(_meta(scope, body, complete), lambda: body)
        status, text = await accept_async(match["gateway"], request, self.group_commit.store)
        payload = text.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", _CONTENT_TYPE),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # What is loaded by now lives as long as the process: the collector need not
                # walk it again and again while thousands of requests a second allocate.
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.group_commit.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def database_connect_kwargs() -> dict[str, Any]:
    """psycopg connection arguments for the group commit's own connection: Django's, without
    its synchronous cursor class."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return params


async def _read_body(receive: Receive, *, limit: int) -> tuple[bytes, bool] | None:
    """Read at most `limit` + 1 bytes of the body: a hostile sender cannot make us buffer
    more. Returns (body, whether that is the whole body), or None on a disconnect."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[: limit + 1], False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _meta(scope: Scope, body: bytes, complete: bool) -> dict[str, Any]:
    """The WSGI-style META the adapters read, from the ASGI scope."""
    meta: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
    }
    for name, value in scope.get("headers", []):
        key = _META_KEYS.get(name) or _meta_key(name)
        if key is None:
            continue  # as WSGI servers do: "X_Forwarded_For" must not pass for X-Forwarded-For
        text = value.decode("latin-1")
        meta[key] = f"{meta[key]},{text}" if key in meta else text  # as a WSGI server joins
    if not complete:  # more than the adapter accepts, whatever the header says
        meta["CONTENT_LENGTH"] = str(max(len(body), MAX_BODY_BYTES + 1))
    else:
        meta.setdefault("CONTENT_LENGTH", str(len(body)))
    return meta


# The gateway sends the same dozen header names with every message: each one's META key is
# worked out once. Bounded, as any client can send names of its own.
_META_KEYS: dict[bytes, str] = {}
_META_KEYS_MAX = 256


def _meta_key(name: bytes) -> str | None:
    if b"_" in name:
        return None
    key = name.decode("latin-1").upper().replace("-", "_")
    if key not in ("CONTENT_LENGTH", "CONTENT_TYPE"):
        key = "HTTP_" + key
    if len(_META_KEYS) < _META_KEYS_MAX:
        _META_KEYS[name] = key
    return key
