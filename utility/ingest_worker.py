"""The gunicorn worker class of the ingest service: uvicorn's, with its own reading of
X-Forwarded-For switched off. The gateway's address is decided in one place, by the project's
rule (TRUSTED_PROXIES, utility.client_address), so the allow-list (S9) cannot
be satisfied by a header uvicorn chose to trust.

Its HTTP protocol sends each response in one system call: uvicorn writes the status line and
headers, then the body, and uvloop sends every write at once, so a small answer would cost two
sends on the socket (and two wake-ups of the gateway), a good part of the service's CPU per
message at gateway speed."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker


class CoalescingTransport:
    """A transport whose writes made in one turn of the event loop leave together, at the
    end of that turn, in order; closing sends what is pending first. Everything else is the
    wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():  # else the peer is gone: nobody to send it to
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self.flow._transport = self.transport


class IngestWorker(UvicornWorker):
    CONFIG_KWARGS = {
        **UvicornWorker.CONFIG_KWARGS,
        "http": CoalescingHttpToolsProtocol,
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,  # one line per SMS; smsgateway logs refusals
    }
