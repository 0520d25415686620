"""The Celery app talks to Redis, and a real worker runs our tasks against the same database."""

import os
import subprocess
import sys
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


@pytest.fixture
def real_worker():
    """A Celery worker process (solo pool, queue default) on the test database and Redis; the
    tasks sent meanwhile go to it instead of running eagerly."""
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),  # the test database, so the worker sees our rows
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
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
            "default",
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
        yield worker
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
    outcome = verify_chain_task.apply_async().get(timeout=60)
    assert outcome["ok"] is True
    # The worker, a separate process, wrote its audit record into the test database.
    assert AuditEvent.objects.filter(action="audit.chain_verified", actor_label="beat").exists()


def _other_backends() -> set[int]:
    """The PostgreSQL backends connected to the test database, but this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_from_task_to_task(real_worker):
    """A new PostgreSQL backend per task (Celery's default with Django) costs the database
    more than a short task's own statements: the worker keeps its connection, as a web
    process does between requests, and drops it when broken."""
    verify_chain_task.apply_async().get(timeout=60)
    [worker_backend] = _other_backends()
    verify_chain_task.apply_async().get(timeout=60)
    assert _other_backends() == {worker_backend}

    with connection.cursor() as cursor:  # the connection breaks between two tasks
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [worker_backend])
    assert verify_chain_task.apply_async().get(timeout=60)["ok"] is True
    [new_backend] = _other_backends()
    assert new_backend != worker_backend
