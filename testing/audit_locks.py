"""Helpers for tests of lock order around the audit log: the anomaly caps, and paths that must
take their locks before writing audit records (not used by the portal itself).

A cap is only as good as its serialisation: the check must hold the action's lock from the
count until the request's own audit record commits. Two helpers show both halves with a real
second database session, for any capped request:

* `run_while_a_concurrent_request_holds_the_cap`: the request waits for a concurrent one and
  then counts that one's record;
* `run_with_the_audit_chain_held`: stopped inside its own audit record, the request still holds
  the cap's lock, so a concurrent one cannot count before that record is committed.

`run_blocked_before_the_audit_chain` shows a request waiting for a row holds no lock on the
audit chain, so it cannot deadlock with a path that locks that row and then records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from audit.caps import cap_lock_name
from audit.models import AuditChainHead
from testing.processes import current_database_url
from utility.pg import ADVISORY_XACT_LOCK, TRY_ADVISORY_XACT_LOCK

T = TypeVar("T")

WAIT_SECONDS = 15


def _connect() -> psycopg.Connection:
    return psycopg.connect(current_database_url().replace("postgres://", "postgresql://", 1))


class _Request(threading.Thread):
    """The request under test, in its own thread and so its own database session."""

    def __init__(self, request: Callable[[], T]) -> None:
        super().__init__(daemon=True)
        self.request = request
        self.value: object = None
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        from django.db import connections

        try:
            self.value = self.request()
        except BaseException as exc:  # handed to the test's thread
            self.error = exc
        finally:
            connections.close_all()
            self.finished.set()

    def result(self):
        assert self.finished.wait(WAIT_SECONDS), "the request did not finish"
        self.join(5)
        if self.error is not None:
            raise self.error
        return self.value


def _wait_until_blocked(probe: psycopg.Connection, request: _Request, holder_pid: int) -> bool:
    """Until a session waits for a lock the holder's session holds (so it is the request's;
    nothing else on the server counts), or the request ends without having waited."""
    deadline = time.monotonic() + WAIT_SECONDS
    query = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
    while time.monotonic() < deadline and not request.finished.is_set():
        if probe.execute(query, [holder_pid]).fetchone()[0]:
            return True
        time.sleep(0.02)
    return False


def _run_against_a_held_lock(
    request: Callable[[], T],
    hold: tuple[str, list],
    check: Callable[[psycopg.Connection], object],
) -> tuple[T, bool, object]:
    """Another session takes the lock of the statement `hold`; `request` runs in its own thread;
    once it waits for that lock, `check(probe)` runs and the other session lets go. Returns
    what the request returned (or raises what it raised), whether it waited, and what the
    check returned."""
    holder, probe = _connect(), _connect()
    probe.autocommit = True
    runner = _Request(request)
    try:
        holder.execute(*hold)
        runner.start()
        waited = _wait_until_blocked(probe, runner, holder.info.backend_pid)
        checked = check(probe) if waited else None
        holder.rollback()
        value = runner.result()
    finally:
        holder.close()
        probe.close()
    return value, waited, checked


def _chain_head_table() -> str:
    AuditChainHead.objects.get_or_create(pk=1)
    return AuditChainHead._meta.db_table


def run_while_a_concurrent_request_holds_the_cap(
    action: str, request: Callable[[], T], meanwhile: Callable[[], object]
) -> T:
    """Run `request` while another session holds `action`'s cap lock, as a concurrent request
    does until it commits. Asserts that `request` waits for that lock; `meanwhile` then writes
    what the concurrent request commits (its audit record of the action) before the lock is
    released. A request that counted without the lock would not wait, and would not see that
    record. Returns what `request` returned (or raises what it raised)."""
    value, waited, _ = _run_against_a_held_lock(
        request,
        (ADVISORY_XACT_LOCK, [cap_lock_name(action)]),
        lambda probe: meanwhile(),
    )
    assert waited, f"the {action} cap was checked without waiting for a concurrent request"
    return value


def run_with_the_audit_chain_held(action: str, request: Callable[[], T]) -> T:
    """Run `request` (one that records `action`) while another session holds the audit chain
    head, so the request stops inside an audit record; asserts that at that moment `action`'s
    cap lock is taken (by the request). Were the lock released before the request's record
    committed, a concurrent request could count without it. Returns what `request` returned."""

    def cap_lock_taken(probe: psycopg.Connection) -> bool:
        return not probe.execute(TRY_ADVISORY_XACT_LOCK, [cap_lock_name(action)]).fetchone()[0]

    value, stopped, taken = _run_against_a_held_lock(
        request,
        (f'SELECT 1 FROM "{_chain_head_table()}" WHERE id = 1 FOR UPDATE', []),  # noqa: S608
        cap_lock_taken,
    )
    assert stopped, "the request wrote no audit record"
    assert taken, f"the request's audit record is written after the {action} cap lock is released"
    return value


def run_blocked_before_the_audit_chain(request: Callable[[], T], hold: str, params: list) -> T:
    """Run `request` while another session holds the row lock that `hold` (a SELECT ... FOR
    UPDATE) takes, and assert that, waiting for it, the request holds no lock on the audit chain
    head. A path that writes an audit record before taking a lock that others take before
    theirs would deadlock against them. Returns what `request` returned."""
    table = _chain_head_table()

    def chain_free(probe: psycopg.Connection) -> bool:
        try:
            probe.execute(f'SELECT 1 FROM "{table}" WHERE id = 1 FOR UPDATE NOWAIT')  # noqa: S608
        except psycopg.errors.LockNotAvailable:
            return False
        return True

    value, waited, free = _run_against_a_held_lock(request, (hold, params), chain_free)
    assert waited, "the request did not wait for the held row"
    assert free, "the request holds the audit chain while it waits for another lock"
    return value
