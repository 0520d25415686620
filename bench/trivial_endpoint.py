"""A trivial webhook for bench/bench_kannel.py: read the body, count it, answer 200.

Served by gunicorn (2 workers, gthread, 8 threads). Every request appends one byte to the
file named by BENCH_COUNT_FILE; an O_APPEND write of one byte is atomic across processes,
so the file size is the number of requests served.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

_COUNT_FILE = os.environ.get("BENCH_COUNT_FILE", "/tmp/bench-kannel-count")
_fd: int | None = None


def _count() -> None:
    global _fd
    if _fd is None:  # opened lazily, after gunicorn forked the worker
        _fd = os.open(_COUNT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(_fd, b".")


def app(environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    _count()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]
