"""The webhook's half of ingest: authenticate the gateway (S9), store its message raw and
durably, make sure a drain will process it, answer. Nothing here parses a frame, decrypts or
looks up a meter, so the gateway-facing service holds no device key; verification and storage
happen on the sms workers (`ingest.drain`).

Two callers share this: the Django view (`views.inbound`, the portal's own URL, used by the
demo) and the ingest service's event loop (`asgi.IngestApplication`), which stores with a
group commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from audit.models import Outcome
from audit.services import record

from .adapters import ADAPTERS, GatewayRejected, GatewayRequest, InboundSms
from .rawstore import store_raw

logger = logging.getLogger("smsgateway")

PROCESS_INBOUND = "smsgateway.process_inbound"

Answer = tuple[int, str]  # HTTP status, plain-text body
# Every answer's body is ASCII. No charset parameter: smsbox converts a reply from a declared
# charset with iconv (opened and closed per message), though it never sends our reply on.
ANSWER_CONTENT_TYPE = "text/plain"


def accept(gateway: str, request: GatewayRequest) -> Answer:
    """Answer one gateway request on the inbound route. 200 once the message is stored
    ("queued <id>", or "duplicate" for a retry of a stored one), 503 when it could not be
    stored (the gateway keeps it and retries), 4xx when the request is not from our gateway
    (logged and audited)."""
    try:
        sms = _authenticated_sms(gateway, request)
    except GatewayRejected as exc:
        refused(request, gateway, exc)
        return exc.status, exc.reason
    try:
        message_id = store_raw(sms, now=timezone.now())
    except DatabaseError:
        return _not_stored(sms)
    _scheduler(inline=True).message_stored()
    return _stored(message_id)


async def accept_async(
    gateway: str,
    request: GatewayRequest,
    store: Callable[..., Awaitable[int | None]],
) -> Answer:
    """`accept` on an event loop: `store` is the group commit's; nothing here blocks the loop
    but the rare refusal's audit record, which runs in a thread."""
    try:
        sms = _authenticated_sms(gateway, request)
    except GatewayRejected as exc:
        await sync_to_async(_refused_in_thread, thread_sensitive=False)(request, gateway, exc)
        return exc.status, exc.reason
    try:
        message_id = await store(sms, now=timezone.now())
    except DatabaseError:
        return _not_stored(sms)
    _scheduler(inline=False).message_stored()
    return _stored(message_id)


def _refused_in_thread(request: GatewayRequest, gateway: str, exc: GatewayRejected) -> None:
    """`refused` from an executor thread, which, unlike a request's, nobody else tidies: a
    connection broken or too old is dropped before use and after."""
    close_old_connections()
    try:
        refused(request, gateway, exc)
    finally:
        close_old_connections()


def _authenticated_sms(gateway: str, request: GatewayRequest) -> InboundSms:
    adapter = ADAPTERS[gateway]
    adapter.authenticate(request)
    return adapter.parse(request)


def _not_stored(sms: InboundSms) -> Answer:
    logger.exception("inbound SMS from %s not stored; asking the gateway to retry", sms.sender)
    return 503, "temporarily unavailable"


def _stored(message_id: int | None) -> Answer:
    # A retry queues a drain too (above): the first delivery may be stored but not processed.
    return 200, "duplicate" if message_id is None else f"queued {message_id}"


def refused(request: GatewayRequest, gateway: str, exc: GatewayRejected) -> None:
    logger.warning("%s request from %s refused: %s", gateway, request.client_ip, exc.reason)
    try:
        record(
            "sms.gateway_refused",
            actor="anonymous",
            target=gateway,
            outcome=Outcome.DENIED,
            details={"reason": exc.reason, "path": request.meta.get("PATH_INFO", "")},
            source_ip=request.client_ip,
        )
    except DatabaseError:
        logger.exception("could not audit a refused gateway request")


class DrainScheduler:
    """Queues drains for the messages this process stores, at most one per `interval`.

    A drain queued after a message was committed will see it. The first message after a quiet
    spell queues one at once; messages within `interval` of that share one more drain, queued
    by the scheduler's thread when the interval is up. So every stored message is followed by
    a drain queued after it, without a broker round trip (or any other I/O) per message.
    `inline` publishes the first one from the caller's thread (a Django view; with eager
    Celery, as in the tests and the demo, the drain then runs before the answer); otherwise
    every publish happens on the scheduler's thread, never on an event loop. That one thread
    lives while messages keep coming (it ends after IDLE_EXIT_SECONDS without any): Celery
    keeps its producer per thread, and setting it up again for every drain cost more than the
    drain's publish itself. A broker failure loses nothing: the message is stored, and the
    beat sweep drains it."""

    IDLE_EXIT_SECONDS = 60.0

    def __init__(self, interval: float, *, inline: bool) -> None:
        self.interval, self.inline = interval, inline
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._last = float("-inf")
        self._due: float | None = None  # when the scheduled drain is to be queued
        self._queuing = False
        self._thread: threading.Thread | None = None

    def message_stored(self) -> None:
        with self._lock:
            if self._due is not None:
                return  # the scheduled drain is queued after this message's commit
            now = time.monotonic()
            wait = max(0.0, self._last + self.interval - now)
            if wait > 0 or not self.inline:
                self._due = now + wait
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="drain-scheduler", daemon=True
                    )
                    self._thread.start()
                self._changed.notify_all()
                return
            self._last = now
        self._queue_drain()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no drain is scheduled or being queued; False if `timeout` came first."""
        with self._lock:
            return self._changed.wait_for(lambda: self._due is None and not self._queuing, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                quiet_until = time.monotonic() + self.IDLE_EXIT_SECONDS
                while self._due is None or self._due > time.monotonic():
                    if self._due is not None:
                        self._changed.wait(self._due - time.monotonic())
                    elif time.monotonic() < quiet_until:
                        self._changed.wait(quiet_until - time.monotonic())
                    else:
                        self._thread = None  # quiet for long: the next message starts another
                        return
                self._due, self._queuing = None, True
                self._last = time.monotonic()
            try:
                self._queue_drain()
            finally:
                try:
                    connections.close_all()  # this thread's, had an eager drain opened any
                finally:
                    with self._lock:
                        self._queuing = False
                        self._changed.notify_all()

    def _queue_drain(self) -> None:
        try:
            # By name: the webhook's side never imports the workers' code (which opens keys).
            # No result is wanted: with one, the result backend would subscribe to each
            # drain's result on this long-lived thread and never read the replies.
            current_app.signature(PROCESS_INBOUND).apply_async(retry=False, ignore_result=True)
        except Exception:  # any broker failure: the sweep is the fallback
            logger.warning("could not queue inbound processing; the sweep will", exc_info=True)


_schedulers: dict[bool, DrainScheduler] = {}


def _scheduler(*, inline: bool) -> DrainScheduler:
    scheduler = _schedulers.get(inline)
    if scheduler is None or scheduler.interval != settings.SMS_DRAIN_INTERVAL:
        scheduler = _schedulers[inline] = DrainScheduler(settings.SMS_DRAIN_INTERVAL, inline=inline)
    return scheduler
