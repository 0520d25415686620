"""A billing run on two real Celery worker processes: every account billed exactly once."""

from __future__ import annotations

import os
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections, transaction
from django.db.models import Count

from audit.models import AuditEvent
from billing import selectors, services
from billing.models import BillingRun, Invoice, InvoiceKind, RunStatus, TariffKind
from e2e.harness.portal import WorkerProcess
from testing.processes import current_database_url
from utility.celery import app

from .conftest import utc, write_readings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

JAN = date(2025, 1, 1)
ACCOUNTS = 30


def start_worker(name: str, queue: str, log: Path) -> WorkerProcess:
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),  # the test database, so workers see our rows
        "REDIS_URL": django_settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    # A queue of this test's own: no other worker takes these tasks.
    return WorkerProcess(env, log, queue, pool="solo", concurrency=1, name=f"{name}@{queue}")


def test_two_workers_bill_every_account_exactly_once(make_tariff, make_account, settings, tmp_path):
    """30 accounts in chunks of 3 (10 chunks); the run is started twice at once, so the same
    chunks are handed out twice and both workers race for them. Each account gets one invoice
    of 372 kWh at 0.20 = 74.40, the tally completes the run, and both workers billed chunks."""
    settings.BILLING_BATCH_SIZE = 3
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    accounts = []
    for _ in range(ACCOUNTS):
        account, meter = make_account(tariff)
        write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
        accounts.append(account)
    queue = f"billing-test-{uuid.uuid4().hex[:12]}"
    workers = [start_worker(f"w{i}", queue, tmp_path / f"w{i}.log") for i in (1, 2)]
    app.conf.task_always_eager = False
    try:
        first = services.start_billing_run(JAN, by="test", queue=queue)
        again = services.start_billing_run(JAN, by="test", queue=queue)
        assert again.pk == first.pk and first.chunks_total == 10
        deadline = time.monotonic() + 180
        progress = selectors.run_progress(first.pk)
        while progress.status == RunStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.5)
            progress = selectors.run_progress(first.pk)
        # The run completes with the first chord; wait for the second's tasks to find their
        # chunks done too.
        chunk_tasks: dict[str, int] = {}
        while sum(chunk_tasks.values()) < 20 and time.monotonic() < deadline:
            stats = app.control.inspect(destination=[f"w1@{queue}", f"w2@{queue}"], timeout=5)
            chunk_tasks = {
                name: info["total"].get("billing.bill_chunk", 0)
                for name, info in (stats.stats() or {}).items()
            }
    finally:
        app.conf.task_always_eager = True
        for worker in workers:
            worker.stop()
    assert progress.status == RunStatus.COMPLETED, progress
    assert (progress.chunks_done, progress.accounts_done, progress.percent) == (10, ACCOUNTS, 100)
    per_account = dict(
        Invoice.objects.filter(kind=InvoiceKind.INVOICE, period_start=JAN)
        .values_list("account_id")
        .annotate(n=Count("pk"))
    )
    assert per_account == {account.pk: 1 for account in accounts}
    assert set(Invoice.objects.values_list("total", flat=True)) == {Decimal("74.40")}
    run = BillingRun.objects.get()
    assert (run.invoices_issued, run.failed, run.accounts_total) == (ACCOUNTS, 0, ACCOUNTS)
    # Both processes took chunks (each chunk task ran twice: once billing, once finding it done).
    assert len(chunk_tasks) == 2 and all(chunk_tasks.values()), chunk_tasks
    assert sum(chunk_tasks.values()) == 20
    # The tally ran once to completion however many callbacks arrived.
    assert AuditEvent.objects.filter(action="billing.run_completed").count() == 1


def test_a_chunk_is_billed_while_another_worker_holds_its_own_chunk(make_tariff, make_account):
    """Workers lock only their own chunk: while another transaction holds chunk 2 exactly as
    `bill_chunk` locks it, chunk 1 is billed at once instead of waiting for it (locking the
    run's row as well made the workers take their chunks one at a time)."""
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    for _ in range(2):
        _, meter = make_account(tariff)
        write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    run = services.plan_run(JAN, now=utc(2025, 2, 3), by="test", chunk_size=1)
    first, second = run.chunks.order_by("number")
    with transaction.atomic():  # only to compile the locking query
        sql, params = services.chunk_for_billing(second.pk).query.sql_with_params()
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(sql, params)
            with connections["default"].cursor() as mine:
                mine.execute("SET lock_timeout = '5s'")
            done = services.bill_chunk(first.pk, now=utc(2025, 2, 3), by="test")
        assert done.invoices_issued == 1
    finally:
        other.rollback()
        other.close()
