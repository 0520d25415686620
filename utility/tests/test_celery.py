"""The Celery app talks to Redis, and a real worker runs our tasks against the same database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import AuditEvent
from audit.tasks import verify_chain_task
from testing.processes import current_database_url
from utility.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_routes_and_beat_schedule_are_in_code():
    assert app.conf.task_routes["smsgateway.process_inbound"] == {"queue": "sms"}
    assert app.conf.beat_schedule["verify-audit-chain"]["task"] == "audit.verify_chain"
    assert "audit.verify_chain" in app.tasks


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_from_redis():
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
        result = verify_chain_task.apply_async()
        outcome = result.get(timeout=60)
    finally:
        app.conf.task_always_eager = True
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert outcome["ok"] is True
    # The worker, a separate process, wrote its audit record into the test database.
    assert AuditEvent.objects.filter(action="audit.chain_verified", actor_label="beat").exists()
