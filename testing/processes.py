"""Helpers for tests that start real processes of the portal or race real requests (not used
by the portal itself)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def current_database_url() -> str:
    """The URL of the database this (pytest-django) process is connected to, so a subprocess
    (gunicorn, a Celery worker) sees the same rows."""
    from django.db import connection

    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    user, host = db.get("USER") or "", db.get("HOST") or "localhost"
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def all_at_once(requests: list[Callable[[], T]], *, timeout: float = 60) -> list[T]:
    """Run each request in its own thread (and so its own database connection), all released
    together, and return their results in order: a race between real concurrent requests.
    An exception in a request is re-raised here."""
    from django.db import connection

    gate = threading.Barrier(len(requests))
    results: list = [None] * len(requests)
    errors: list[BaseException] = []

    def run(index: int, request: Callable[[], T]) -> None:
        try:
            gate.wait(timeout=timeout)
            results[index] = request()
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError("a concurrent request did not finish")
    return results
