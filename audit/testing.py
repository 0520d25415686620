"""Helpers for tests of the anomaly caps (not used by the portal itself)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

from utility.pg import ADVISORY_XACT_LOCK
from utility.testing import current_database_url

from .caps import cap_lock_name

T = TypeVar("T")


def run_while_a_concurrent_request_holds_the_cap(
    action: str, request: Callable[[], T], meanwhile: Callable[[], object]
) -> T:
    """Run `request` in its own thread and database session while another session holds
    `action`'s cap lock, as a concurrent request for the same action does until it commits.

    Asserts that `request` waits for that lock; `meanwhile` then writes what the concurrent
    request commits (its audit record of the action) before the lock is released. A request
    that counted without the lock would not wait, and would not see that record. Returns what
    `request` returned (or raises what it raised). Needs PostgreSQL and a transactional test."""
    from django.db import connections

    outcome: dict[str, object] = {}
    finished = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = request()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc
        finally:
            connections.close_all()
            finished.set()

    holder = psycopg.connect(current_database_url().replace("postgres://", "postgresql://", 1))
    try:
        holder.execute(ADVISORY_XACT_LOCK, [cap_lock_name(action)])
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        waited = not finished.wait(1.0)
        meanwhile()
        holder.rollback()  # the concurrent request ends; its records are committed
        assert finished.wait(30), "the request did not finish after the cap lock was released"
        thread.join(5)
    finally:
        holder.close()
    assert waited, f"the {action} cap was checked without waiting for a concurrent request"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
