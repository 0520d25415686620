"""The anchor for the ingest benchmarks: the fastest honest HTTP endpoint Kannel can post to.

A raw ASGI application (no framework) served by uvicorn with uvloop and httptools: it reads
the body, counts the request and answers 200 with an empty body. Each worker process keeps its
count in a file of its own, `BENCH_COUNT_FILE.<pid>`, mapped into memory: counting a request is
a store into shared memory, not a system call, and the driver sums the files
(`bench_kannel.counted`).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Awaitable, Callable

_COUNT_FILE = os.environ.get("BENCH_COUNT_FILE", "/tmp/bench-kannel-count")
_COUNTER = struct.Struct("<Q")
_count_map: mmap.mmap | None = None
_requests = 0

_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"0")]


def _count() -> None:
    global _count_map, _requests
    if _count_map is None:  # made lazily, after the server forked the worker
        fd = os.open(f"{_COUNT_FILE}.{os.getpid()}", os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, _COUNTER.size)
        _count_map = mmap.mmap(fd, _COUNTER.size)
        os.close(fd)
    _requests += 1
    _COUNTER.pack_into(_count_map, 0, _requests)


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
