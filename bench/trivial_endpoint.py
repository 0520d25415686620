"""A trivial endpoint for Kannel to post to in Python: what Kannel delivers into the cheapest
ASGI application (bench/bench_kannel.py --endpoint uvicorn; nginx is the faster anchor).

A raw ASGI application (no framework) served by uvicorn with uvloop and httptools: it reads
the body, counts the request and answers 200 with an empty body. Every request appends one
byte to the file named by BENCH_COUNT_FILE; an O_APPEND write of one byte is atomic across
processes, so the file size is the number of requests served.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

_COUNT_FILE = os.environ.get("BENCH_COUNT_FILE", "/tmp/bench-kannel-count")
_fd: int | None = None

_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"0")]


def _count() -> None:
    global _fd
    if _fd is None:  # opened lazily, after the server forked the worker
        _fd = os.open(_COUNT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(_fd, b".")


async def app(
    scope: dict,
    receive: Callable[[], Awaitable[dict]],
    send: Callable[[dict], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # the whole body, as the real webhook reads it
        message = await receive()
        more = message.get("more_body", False)
    _count()
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b""})
