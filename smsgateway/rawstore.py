"""Storing inbound messages raw, the first thing done with them (S3): one row per gateway
message, so a gateway retry stores nothing twice."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from django.db import DatabaseError

from utility.pg import array_cursor

from .adapters import InboundSms
from .models import InboundMessage, InboundStatus

logger = logging.getLogger("smsgateway")

_COLUMNS = (
    "gateway",
    "dedupe_key",
    "sender",
    "receiver",
    "smsc",
    "gateway_time",
    "coding",
    "udh",
    "payload",
    "received_at",
    "status",
    "reason",
    "detail",
)


def dedupe_key(sms: InboundSms) -> str:
    if sms.gateway_id:
        if len(sms.gateway_id) > 100:  # the key column holds 128; a long id is hashed whole
            return f"idh:{hashlib.sha256(sms.gateway_id.encode()).hexdigest()}"
        return f"id:{sms.gateway_id}"
    # Without a gateway id, the content identifies the message: every genuine frame is unique
    # (its counter and tag differ), so an identical body from the same sender is a retry.
    digest = hashlib.sha256(sms.sender.encode() + b"\0" + sms.udh + b"\0" + sms.payload)
    return f"sha256:{digest.hexdigest()}"


def store_raw(sms: InboundSms, *, now: datetime) -> int | None:
    """Durably store one message as received (committed on return, outside a transaction).
    Returns its id, or None when the gateway has delivered it before."""
    return store_raw_many([(sms, now)])[0]


def store_raw_many(received: Sequence[tuple[InboundSms, datetime]]) -> list[int | None]:
    """Store (message, time received) pairs in one statement; for each, its new id or None if
    already stored (a second copy within `received` too)."""
    keys = unique_keys(received)
    return ids_in_order(keys, _insert_postgresql(received, keys))


def _column_list() -> str:
    meta = InboundMessage._meta
    return ", ".join(meta.get_field(name).column for name in _COLUMNS)


def _insert_postgresql(
    received: Sequence[tuple[InboundSms, datetime]], keys: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    with array_cursor() as cursor:
        cursor.execute(INSERT_MANY, insert_many_params(received, keys))
        return {(gateway, key): pk for gateway, key, pk in cursor.fetchall()}


# PostgreSQL: one statement text whatever the number of rows; whole columns travel as arrays.
INSERT_MANY = f"""
    INSERT INTO {InboundMessage._meta.db_table} ({_column_list()})
    SELECT g, k, s, r, c, t, co, u, p, at, %s, '', ''
    FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                %b::timestamptz[], %b::smallint[], %b::bytea[], %b::bytea[], %b::timestamptz[])
         AS v(g, k, s, r, c, t, co, u, p, at)
    ON CONFLICT (gateway, dedupe_key) DO NOTHING
    RETURNING gateway, dedupe_key, id
"""  # noqa: S608 - names come from the model


def insert_many_params(
    received: Sequence[tuple[InboundSms, datetime]], keys: list[tuple[str, str]]
) -> list[object]:
    messages = [sms for sms, _ in received]
    return [
        InboundStatus.RECEIVED.value,
        [gateway for gateway, _ in keys],
        [key for _, key in keys],
        [sms.sender[:32] for sms in messages],
        [sms.receiver[:32] for sms in messages],
        [sms.smsc[:64] for sms in messages],
        [sms.gateway_time for sms in messages],
        [sms.coding for sms in messages],
        [sms.udh for sms in messages],
        [sms.payload for sms in messages],
        [at for _, at in received],
    ]


def unique_keys(received: Sequence[tuple[InboundSms, datetime]]) -> list[tuple[str, str]]:
    return [(sms.gateway, dedupe_key(sms)) for sms, _ in received]


def ids_in_order(
    keys: list[tuple[str, str]], stored: dict[tuple[str, str], int]
) -> list[int | None]:
    """Each message's new id, None for one stored before or earlier in the same group."""
    return [stored.pop(key, None) for key in keys]


class AsyncGroupCommit:
    """Group commit for the ingest service's event loop (PostgreSQL): requests hand their
    message to one writer task, which stores everything waiting with one statement and one
    commit on its own connection, then answers each request (its id, None for a duplicate, or
    the error). Under load a group forms while the previous commit is being flushed; a lone
    message is written at once. Every request still answers its gateway only after its own
    message is durable (autocommit, synchronous_commit as the server has it).

    The one statement is prepared on that connection at its first use: parsing and planning
    it again for every group cost the database more than the group's rows.

    A message the database refuses (a value it cannot take) is written again on its own, so it
    fails alone; a statement that hangs is cancelled after STATEMENT_TIMEOUT; past MAX_WAITING
    messages in the queue new ones are refused at once (503: the gateway keeps them). After any
    other failure the next group starts on a new connection, so nothing of the old session (a
    prepared statement a migration has made stale, say) can fail it again."""

    MAX_WAITING = 10_000
    STATEMENT_TIMEOUT_MS = 10_000

    def __init__(self, connect_kwargs: dict[str, Any], *, max_group: int = 500) -> None:
        options = (
            f"{connect_kwargs.get('options', '')} -c statement_timeout={self.STATEMENT_TIMEOUT_MS}"
        )
        # Django's connections never prepare (prepare_threshold None, for connection poolers);
        # this one is the service's own, and runs one statement thousands of times a second.
        self.connect_kwargs = {**connect_kwargs, "options": options.strip(), "prepare_threshold": 0}
        self.max_group = max_group
        self._queue: asyncio.Queue[tuple[tuple[InboundSms, datetime], asyncio.Future]] | None
        self._queue = None
        self._writer: asyncio.Task | None = None
        self._connection: psycopg.AsyncConnection | None = None
        self._cursor: psycopg.AsyncCursor | None = None

    async def store(self, sms: InboundSms, *, now: datetime) -> int | None:
        if self._writer is None or self._writer.done():
            # A writer that died (it should not: it answers every error) answers nobody still
            # waiting in its queue; they get their 503 rather than hang.
            self._fail_waiting(DatabaseError("inbound message not stored"))
            self._queue = asyncio.Queue(maxsize=self.MAX_WAITING)
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(((sms, now), future))
        except asyncio.QueueFull:
            raise DatabaseError("too many inbound messages waiting to be stored") from None
        return await future

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
        self._fail_waiting(DatabaseError("the ingest service is stopping"))
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _fail_waiting(self, error: DatabaseError) -> None:
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(error)

    async def _write_forever(self) -> None:
        queue = self._queue
        while True:
            group = [await queue.get()]
            try:
                while not queue.empty() and len(group) < self.max_group:
                    group.append(queue.get_nowait())
                await self._write(group)
            except asyncio.CancelledError:  # stopping: nobody taken off the queue is left hanging
                for _, future in group:
                    if not future.done():
                        future.set_exception(DatabaseError("the ingest service is stopping"))
                raise

    async def _write(self, group: list[tuple[tuple[InboundSms, datetime], asyncio.Future]]) -> None:
        try:
            ids = await self._insert([item for item, _ in group])
        except (psycopg.DataError, psycopg.IntegrityError):
            if len(group) == 1:
                self._fail(group)
                return
            for one in group:  # find the one the database refuses; the others are stored
                await self._write([one])
            return
        except Exception:  # whatever it is, every waiting request gets its 503
            self._fail(group)
            await self._reconnect_next_time()
            return
        for (_, future), message_id in zip(group, ids, strict=True):
            if not future.done():
                future.set_result(message_id)

    def _fail(self, group: list[tuple[tuple[InboundSms, datetime], asyncio.Future]]) -> None:
        logger.exception("inbound store failed for %d messages", len(group))
        error = DatabaseError("inbound message not stored")
        for _, future in group:
            if not future.done():
                future.set_exception(error)

    async def _reconnect_next_time(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            try:
                await connection.close()
            except Exception:  # closing a connection that already failed: nothing to keep
                logger.warning("could not close the inbound store's connection", exc_info=True)

    async def _insert(self, received: list[tuple[InboundSms, datetime]]) -> list[int | None]:
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._connection = await psycopg.AsyncConnection.connect(
                **self.connect_kwargs, autocommit=True
            )
            # One cursor for the connection's life: it keeps the array dumpers it has looked
            # up, which a new cursor per group would look up again.
            self._cursor = self._connection.cursor()
        keys = unique_keys(received)
        cursor = self._cursor
        await cursor.execute(INSERT_MANY, insert_many_params(received, keys))
        stored = {(gateway, key): pk for gateway, key, pk in await cursor.fetchall()}
        return ids_in_order(keys, stored)
