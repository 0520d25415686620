"""The Celery app talks to Redis, and a real worker runs our tasks against the same database."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from audit.models import AuditEvent
from audit.tasks import verify_chain_task
from testing.processes import current_database_url
from utility.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_routes_and_beat_schedule_are_in_code():
    assert app.conf.task_routes["smsgateway.process_inbound"] == {"queue": "sms"}
    assert app.conf.beat_schedule["verify-audit-chain"]["task"] == "audit.verify_chain"
    assert "audit.verify_chain" in app.tasks


WORKER_APPLICATION_NAME = "celery-test-worker"


@pytest.fixture
def real_worker():
    """A Celery worker process (solo pool) on the test database and Redis, on a queue of its
    own (no other worker takes these tasks); yields the queue's name. Its database connections
    carry WORKER_APPLICATION_NAME."""
    queue = f"celery-test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),  # the test database, so the worker sees our rows
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PGAPPNAME": WORKER_APPLICATION_NAME,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "utility",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        app.conf.task_always_eager = True
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_from_redis(real_worker):
    outcome = verify_chain_task.apply_async(queue=real_worker).get(timeout=60)
    assert outcome["ok"] is True
    # The worker, a separate process, wrote its audit record into the test database.
    assert AuditEvent.objects.filter(action="audit.chain_verified", actor_label="beat").exists()


def _worker_backends() -> set[int]:
    """The PostgreSQL backends of the test worker's connections."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            [WORKER_APPLICATION_NAME],
        )
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_from_task_to_task(real_worker):
    """A new PostgreSQL backend per task (Celery's default with Django) costs the database
    more than a short task's own statements: the worker keeps its connection, as a web
    process does between requests, and drops it when broken."""
    verify_chain_task.apply_async(queue=real_worker).get(timeout=60)
    [worker_backend] = _worker_backends()
    verify_chain_task.apply_async(queue=real_worker).get(timeout=60)
    assert _worker_backends() == {worker_backend}

    with connection.cursor() as cursor:  # the connection breaks between two tasks
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [worker_backend])
        assert cursor.fetchone() == (True,)
    assert verify_chain_task.apply_async(queue=real_worker).get(timeout=60)["ok"] is True
    [new_backend] = _worker_backends()
    assert new_backend != worker_backend
