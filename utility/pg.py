"""Cursors for the set-based hot paths (ingest) on Django's own database connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def array_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's PostgreSQL connection (so inside the current transaction) that
    binds parameters on the server. Statements that pass whole columns as arrays use `%b`
    placeholders: the arrays travel in binary, several times cheaper than the quoted literals
    of Django's client-side binding (for the very largest integer columns, `bigint_array` is
    cheaper still). Errors are raised as Django's, as from any cursor."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


# A named lock held until the transaction ends; names are hashed into the lock's key space.
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"
# The same lock if free at once: true when taken, false when another session holds it.
TRY_ADVISORY_XACT_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext(%s))"


def advisory_xact_lock(name: str) -> None:
    """Take a named lock held until the current transaction ends (PostgreSQL advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute(ADVISORY_XACT_LOCK, [name])


def bigint_array(values: list[int]) -> str:
    """A PostgreSQL array literal of integers, for `%s::bigint[]`. For the largest columns
    (a batch's readings, tens of thousands of values) this is several times cheaper than a
    `%b` list: one string join in C instead of an adapter call per element. Only integers are
    accepted."""
    return "{" + ",".join(map(str, map(int, values))) + "}"
