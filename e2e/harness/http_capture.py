"""A tiny threaded HTTP endpoint that records every request, standing in for the webhook.

Each request is stored with its method, raw path (query undecoded), headers in arrival
order and body bytes. The answer is chosen by a ``responder`` callable, so a test can answer
503 first and 200 later and watch Kannel retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit


@dataclass(frozen=True)
class CapturedRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float = field(compare=False)
    client: str = ""

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    @property
    def raw_query(self) -> dict[str, bytes]:
        """Query values decoded to bytes, not text: binary escapes like %u stay intact."""
        out: dict[str, bytes] = {}
        for pair in urlsplit(self.path).query.split("&"):
            key, _, value = pair.partition("=")
            out[unquote(key)] = unquote_to_bytes(value.replace("+", " "))
        return out

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def to_fixture(self) -> dict[str, object]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers],
            "body_hex": self.body.hex(),
        }


Responder = Callable[[CapturedRequest, int], tuple[int, bytes]]


def always(status: int, body: bytes = b"") -> Responder:
    return lambda _req, _n: (status, body)


class CaptureServer:
    """Context manager running a ThreadingHTTPServer on 127.0.0.1, port 0 by default."""

    def __init__(self, responder: Responder | None = None, port: int = 0) -> None:
        self.responder: Responder = responder or always(200)
        self.requests: list[CapturedRequest] = []
        self._cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = CapturedRequest(
                    method=self.command,
                    path=self.path,
                    headers=list(self.headers.items()),
                    body=body,
                    received_at=time.time(),
                    client=self.client_address[0],
                )
                with server._cond:
                    server.requests.append(req)
                    n = len(server.requests)
                    server._cond.notify_all()
                status, payload = server.responder(req, n)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout: float) -> list[CapturedRequest]:
        """Block until ``count`` requests arrived (or timeout); return a snapshot of all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.requests)
