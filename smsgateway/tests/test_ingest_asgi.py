"""The ingest service's ASGI application: the inbound route answered on the event loop by the
same adapter and rules as the Django view (gateway authentication, raw insert, here through a
group commit, drain request); everything else is Django's."""

import asyncio
import threading
import time
from urllib.parse import urlencode

import psycopg
import pytest
from django.core.asgi import get_asgi_application
from django.db import connection

from audit.models import AuditEvent
from smsgateway import intake
from smsgateway.asgi import IngestApplication
from smsgateway.intake import DrainScheduler
from smsgateway.models import InboundMessage

from .conftest import hours_back

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _drains_finish():
    """Drains run on the schedulers' threads after the answers: let them end before the
    flush."""
    yield
    for scheduler in list(intake._schedulers.values()):
        assert scheduler.wait_idle(timeout=30)


class Client:
    """Speaks ASGI to the application on one event loop, as uvicorn would."""

    def __init__(self, app: IngestApplication) -> None:
        self.app = app

    async def request(
        self,
        method="POST",
        path="/sms/kannel/inbound",
        query=None,
        body=b"",
        client=("127.0.0.1", 40000),
        headers=(),
        chunk=None,
    ):
        chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
        incoming = [
            {"type": "http.request", "body": part, "more_body": i < len(chunks) - 1}
            for i, part in enumerate(chunks)
        ]
        sent = []

        async def receive():
            if incoming:
                return incoming.pop(0)
            await asyncio.Event().wait()  # the client stays connected until it has its answer

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(query or {}).encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver"), *headers],
            "client": client,
            "server": ("127.0.0.1", 8001),
        }
        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        self.last_headers = dict(start["headers"])
        text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], text.decode()


def run(scenario):
    """Run `scenario(client)` on a fresh event loop and application, closing the group
    commit's connection before the loop ends."""
    app = IngestApplication(get_asgi_application())

    async def main():
        try:
            return await scenario(Client(app))
        finally:
            await app.group_commit.close()

    return asyncio.run(main())


def test_the_answer_has_the_django_views_content_type_and_no_charset(test_meter, settings):
    """Both paths answer alike; a charset parameter would cost smsbox a conversion of every
    reply it then drops."""
    from django.test import Client as DjangoClient

    meter = test_meter()
    query = kannel_query(settings, meter.msisdn, id="k-ct")
    frame = meter.report(hours_back(2))

    async def scenario(client):
        answer = await client.request(query=query, body=frame)
        return answer, client.last_headers

    (status, _), headers = run(scenario)
    view = DjangoClient().post(
        f"/sms/kannel/inbound?{urlencode(query)}", frame, content_type="application/octet-stream"
    )
    assert status == view.status_code == 200
    assert headers[b"content-type"].decode() == view["Content-Type"] == "text/plain"


def kannel_query(settings, sender, **extra):
    return {
        "secret": settings.SMS_GATEWAY_SECRET,
        "from": sender,
        "to": settings.SMS_GATEWAY_MSISDN,
        "coding": "1",
        **extra,
    }


def processed(message_id: int, timeout: float = 10) -> InboundMessage:
    """The drain runs on a timer thread after the answer: wait for its outcome."""
    deadline = time.monotonic() + timeout
    while True:
        message = InboundMessage.objects.get(pk=message_id)
        if message.status != "received" or time.monotonic() > deadline:
            return message
        time.sleep(0.02)


def test_a_report_is_stored_answered_and_then_processed(test_meter, settings):
    meter = test_meter()
    frame = meter.report(hours_back(4))
    query = kannel_query(settings, meter.msisdn, id="k-1")

    async def scenario(client):
        return await client.request(query=query, body=frame), await client.request(
            query=query, body=frame
        )

    (status, text), (again_status, again_text) = run(scenario)
    assert status == 200 and text.startswith("queued ")
    assert (again_status, again_text) == (200, "duplicate")
    message = processed(int(text.split()[1]))
    assert message.status == "accepted" and bytes(message.payload) == frame
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"query": {"secret": "wrong"}}, 403, "bad gateway secret"),
        # Authenticated before anything of the request is read or parsed (S3, S9).
        ({"query": {"secret": "wrong"}, "body": b"x" * 4096}, 403, "bad gateway secret"),
        ({"query": {"secret": "wrong", "coding": "70000"}}, 403, "bad gateway secret"),
        ({"client": ("203.0.113.9", 5000)}, 403, "address not allowed"),
        # A forwarded header is not believed from a peer that is not a trusted proxy.
        (
            {"client": ("203.0.113.9", 5000), "headers": [(b"x-forwarded-for", b"127.0.0.1")]},
            403,
            "address not allowed",
        ),
        ({"body": b"x" * 4096}, 413, "body too large"),
        ({"body": b"x" * 4096, "chunk": 100}, 413, "body too large"),
        ({"headers": [(b"content-length", b"many")]}, 400, "bad content length"),
        ({"query": {"coding": "70000"}}, 400, "bad coding"),
        # Past what the C library converts (OSError), past datetime (OverflowError), no date.
        ({"query": {"time": "4611686018427387904"}}, 400, "bad time"),
        ({"query": {"time": "9" * 40}}, 400, "bad time"),
        ({"query": {"time": "2026-13-45 25:61:00"}}, 400, "bad time"),
    ],
)
def test_requests_not_from_our_gateway_are_refused_and_audited(
    test_meter, settings, change, status, reason
):
    settings.TRUSTED_PROXIES = []
    meter = test_meter()
    query = {**kannel_query(settings, meter.msisdn, id="k-2"), **change.pop("query", {})}
    body = change.pop("body", meter.report())

    async def scenario(client):
        return await client.request(query=query, body=body, **change)

    assert run(scenario) == (status, reason)
    assert InboundMessage.objects.count() == 0
    event = AuditEvent.objects.get(action="sms.gateway_refused")
    assert event.details["reason"] == reason
    assert event.source_ip == change.get("client", ("127.0.0.1",))[0]


@pytest.mark.parametrize(
    ("peer", "forwarded", "status"),
    [
        ("127.0.0.1", [(b"x-forwarded-for", b"127.0.0.1")], 200),  # nginx, for the gateway
        ("127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9")], 403),  # nginx, for a stranger
        # A header spelled with underscores is not X-Forwarded-For (WSGI servers drop it too).
        (
            "127.0.0.1",
            [(b"x-forwarded-for", b"203.0.113.9"), (b"x_forwarded_for", b"127.0.0.1")],
            403,
        ),
        # A peer that is not the proxy names the gateway's address: it stays itself.
        ("198.51.100.7", [(b"x-forwarded-for", b"127.0.0.1")], 403),
        ("198.51.100.7", [(b"x-forwarded-for", b"127.0.0.1, 127.0.0.1")], 403),
    ],
)
def test_behind_the_proxy_the_forwarded_address_is_the_one_allowed(
    make_meter, settings, peer, forwarded, status
):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # as deployed behind nginx
    sender = make_meter().sim.msisdn
    query = kannel_query(settings, sender, id="k-9")

    async def scenario(client):
        return await client.request(
            query=query, body=b"\x01", client=(peer, 5000), headers=forwarded
        )

    assert run(scenario)[0] == status
    if status == 403:  # audited under the address that really sent it
        refused = AuditEvent.objects.get(action="sms.gateway_refused")
        expected = peer if peer != "127.0.0.1" else "203.0.113.9"
        assert refused.source_ip == expected


def test_other_requests_are_djangos(settings):
    settings.ROOT_URLCONF = "utility.urls_ingest"  # as utility.settings_ingest has it

    async def scenario(client):
        return [
            (await client.request(method="GET"))[0],  # the view allows POST only
            (await client.request(path="/sms/other/inbound"))[0],
            (await client.request(method="GET", path="/healthz"))[0],
            (await client.request(method="GET", path="/portal/"))[0],  # not on this service
        ]

    assert run(scenario) == [405, 404, 200, 404]


def test_the_database_refusing_the_insert_is_a_503_and_nothing_is_lost(test_meter, settings):
    meter = test_meter()
    frame = meter.report(hours_back(3))
    query = kannel_query(settings, meter.msisdn, id="k-3")
    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"] or "localhost",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )
    blocker.execute("LOCK TABLE smsgateway_inboundmessage IN ACCESS EXCLUSIVE MODE")

    async def scenario(client):
        pending = asyncio.ensure_future(client.request(query=query, body=frame))
        for _ in range(200):  # until the group commit's insert waits for the lock...
            await asyncio.sleep(0.05)
            waiting = blocker.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO smsgateway%%'"
            ).fetchone()[0]
            if waiting:
                break
        blocker.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE '%%INSERT INTO smsgateway_inboundmessage%%'"
        )
        blocker.rollback()
        first = await pending  # ...and its connection dies: the gateway is told to retry
        return first, await client.request(query=query, body=frame)

    try:
        (status, _), (retry_status, retry_text) = run(scenario)
    finally:
        blocker.close()
    assert status == 503
    assert retry_status == 200 and retry_text.startswith("queued ")  # a fresh connection
    assert processed(int(retry_text.split()[1])).status == "accepted"
    assert InboundMessage.objects.count() == 1


def test_deliveries_arriving_together_each_get_their_own_answer(make_meter, settings):
    sender = make_meter().sim.msisdn
    ids = [f"g-{i % 40}" for i in range(80)]  # every message delivered twice

    async def scenario(client):
        return await asyncio.gather(
            *(
                client.request(query=kannel_query(settings, sender, id=i), body=b"\x01" * 40)
                for i in ids
            )
        )

    answers = run(scenario)
    assert {status for status, _ in answers} == {200}
    queued = [text for _, text in answers if text.startswith("queued ")]
    assert len(queued) == 40 and len(set(queued)) == 40
    assert sum(text == "duplicate" for _, text in answers) == 40
    assert InboundMessage.objects.count() == 40


class RecordingScheduler(DrainScheduler):
    def __init__(self, interval: float, *, inline: bool) -> None:
        super().__init__(interval, inline=inline)
        self.queued: list[float] = []

        self.publishing_threads: list[bool] = []

    def _queue_drain(self) -> None:
        self.queued.append(time.monotonic())
        self.publishing_threads.append(threading.current_thread() is threading.main_thread())


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=False)
def test_a_burst_queues_one_drain_at_once_and_one_after_it():
    scheduler = RecordingScheduler(0.2, inline=True)
    start = time.monotonic()
    for _ in range(50):
        scheduler.message_stored()
    assert len(scheduler.queued) == 1  # the first message, at once
    wait_until(lambda: len(scheduler.queued) == 2)
    # The rest of the burst: one more drain, queued after every one of them was stored.
    assert scheduler.queued[1] >= start + 0.2
    time.sleep(0.25)
    assert len(scheduler.queued) == 2  # nothing more without new messages
    scheduler.message_stored()  # after a quiet spell: at once again
    assert len(scheduler.queued) == 3


@pytest.mark.django_db(transaction=False)
def test_on_an_event_loop_no_drain_is_queued_from_the_callers_thread():
    scheduler = RecordingScheduler(0.0, inline=False)
    scheduler.message_stored()
    wait_until(lambda: len(scheduler.queued) == 1)
    assert scheduler.publishing_threads == [False]  # a timer thread published it, not ours


def test_a_message_the_database_refuses_fails_alone(settings):
    """Bypassing the adapter's checks: a NUL in a text field makes PostgreSQL refuse the row.
    The group it arrived with is written again one by one; only that request gets the 503."""
    from django.db import DatabaseError
    from django.utils import timezone

    from smsgateway.adapters import InboundSms
    from smsgateway.asgi import database_connect_kwargs
    from smsgateway.rawstore import AsyncGroupCommit

    def sms(i: int, smsc: str = "t") -> InboundSms:
        return InboundSms("kannel", f"r-{i}", "+447700900001", "", b"x", b"", 1, smsc, None)

    async def scenario():
        commit = AsyncGroupCommit(database_connect_kwargs())
        try:
            return await asyncio.gather(
                *(commit.store(sms(i, "bad\x00" if i == 3 else "t"), now=timezone.now())
                  for i in range(6)),
                return_exceptions=True,
            )  # fmt: skip
        finally:
            await commit.close()

    results = asyncio.run(scenario())
    assert isinstance(results[3], DatabaseError)
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 3)
    assert InboundMessage.objects.count() == 5


def _raw_sms(gateway_id: str):
    """A message as the adapter hands it to the store (its content is never parsed there)."""
    from smsgateway.adapters import InboundSms

    return InboundSms("kannel", gateway_id, "+447700900001", "", b"x", b"", 1, "t", None)


def test_stopping_answers_the_group_being_written_and_those_waiting():
    """The service stops while a group's write is held up (here by a table lock) and more
    messages wait behind it: every one of those requests gets its 503 instead of hanging
    until the process is gone."""
    from django.db import DatabaseError
    from django.utils import timezone

    from smsgateway.asgi import database_connect_kwargs
    from smsgateway.rawstore import AsyncGroupCommit

    async def scenario():
        commit = AsyncGroupCommit(database_connect_kwargs())
        locker = await psycopg.AsyncConnection.connect(**database_connect_kwargs())
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE smsgateway_inboundmessage IN EXCLUSIVE MODE")
                requests = [
                    asyncio.create_task(commit.store(_raw_sms(f"g-{i}"), now=timezone.now()))
                    for i in range(4)
                ]
                await asyncio.sleep(0.2)  # the first group's write waits for the lock
                await commit.close()
                return await asyncio.wait_for(
                    asyncio.gather(*requests, return_exceptions=True), timeout=10
                )
        finally:
            await locker.close()

    answers = asyncio.run(scenario())
    assert all(isinstance(answer, DatabaseError) for answer in answers)


def test_the_statement_is_prepared_and_a_failed_group_leaves_a_fresh_connection_behind():
    """The group commit prepares its statement on its own connection. When that session's
    state goes bad behind psycopg's back (here the prepared statement is dropped, as a
    migration can make one stale), the group that meets it gets its 503 and the next group is
    stored on a new connection instead of failing the same way."""
    from django.db import DatabaseError
    from django.utils import timezone

    from smsgateway.asgi import database_connect_kwargs
    from smsgateway.rawstore import AsyncGroupCommit

    async def scenario():
        commit = AsyncGroupCommit(database_connect_kwargs())
        try:
            first = await commit.store(_raw_sms("p-1"), now=timezone.now())
            old = commit._connection
            prepared = await (
                await old.execute("SELECT statement FROM pg_prepared_statements")
            ).fetchall()
            await old.execute("DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$")
            with pytest.raises(DatabaseError):
                await commit.store(_raw_sms("p-2"), now=timezone.now())
            third = await commit.store(_raw_sms("p-3"), now=timezone.now())
            return first, prepared, old, commit._connection, third
        finally:
            await commit.close()

    first, prepared, old, new, third = asyncio.run(scenario())
    assert any("INSERT INTO smsgateway_inboundmessage" in text for (text,) in prepared)
    assert isinstance(first, int) and isinstance(third, int)
    assert new is not old and old.closed
    assert set(InboundMessage.objects.values_list("dedupe_key", flat=True)) == {"id:p-1", "id:p-3"}


@pytest.mark.django_db(transaction=False)
def test_one_thread_queues_the_drains_and_a_new_one_starts_after_a_quiet_spell(monkeypatch):
    monkeypatch.setattr(DrainScheduler, "IDLE_EXIT_SECONDS", 0.3)
    scheduler = RecordingScheduler(0.05, inline=False)
    publishers = []
    scheduler._queue_drain = lambda: publishers.append(threading.current_thread())
    for expected in (1, 2, 3):
        scheduler.message_stored()
        wait_until(lambda expected=expected: len(publishers) == expected)
        time.sleep(0.06)  # past the interval: the next message gets a drain of its own
    assert len(set(publishers)) == 1  # the same thread each time, not one per drain
    first = publishers[0]
    wait_until(lambda: not first.is_alive())  # quiet: it ends
    scheduler.message_stored()  # and a message after that is still followed by a drain
    wait_until(lambda: len(publishers) == 4)
    assert publishers[3] is not first
    assert scheduler.wait_idle(timeout=5)
