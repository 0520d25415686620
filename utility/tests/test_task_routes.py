"""Every task runs on a queue whose workers have what it needs.

The workers are the Celery units in `deploy/` (`-Q` names their queues); the private KEK is given
only through the sms workers' environment file (docs/operations.md). A task that opens or seals a
frame needs the KEK: routed to a queue some worker without it consumes, it would fail there.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from utility.celery import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The only environment file that holds DEVICE_KEK_PRIVATE_KEYS (docs/operations.md).
KEK_ENVIRONMENT_FILE = "/etc/portal/sms-worker.env"

KEK = "private KEK"
# What each task needs of the worker that runs it, beyond the shared settings.
NEEDS: dict[str, set[str]] = {
    "smsgateway.process_inbound": {KEK},  # opens inbound frames
    "smsgateway.sweep_inbound": {KEK},  # drains like process_inbound
    "smsgateway.send_rekey_inits": {KEK},  # seals key agreements under the meter's key
    "accounts.send_claim_code": {KEK},  # seals the code for the meter's display
    "smsgateway.send_outbound": set(),  # hands an already sealed message to the SMSC
    "smsgateway.send_outbound_many": set(),
    "smsgateway.send_due": set(),
    "smsgateway.flag_silent_meters": set(),
    "accounts.register_customer": set(),
    "accounts.send_email": set(),
    "audit.verify_chain": set(),
    "billing.run_period": set(),
    "billing.bill_chunk": set(),
    "billing.finish_run": set(),
    "billing.start_due_runs": set(),
    "fraud.run_detectors": set(),
    "operations.execute_run": set(),
    "operations.count_read_rates": set(),
    "readings.ensure_partitions": set(),
    "readings.apply_retention": set(),
}


@dataclass(frozen=True)
class Worker:
    unit: str
    queues: frozenset[str]
    holds: frozenset[str]


def deployed_workers() -> list[Worker]:
    workers = []
    for unit in sorted(DEPLOY.glob("*.service")):
        text = unit.read_text()
        start = re.search(r"^ExecStart=(.*)$", text, re.M)
        command = shlex.split(start.group(1)) if start else []
        if "celery" not in " ".join(command[:1]) or "worker" not in command:
            continue
        queues = command[command.index("-Q") + 1].split(",")
        env_files = set(re.findall(r"^EnvironmentFile=-?(.*)$", text, re.M))
        holds = {KEK} if KEK_ENVIRONMENT_FILE in env_files else set()
        workers.append(Worker(unit.name, frozenset(queues), frozenset(holds)))
    return workers


def queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def registered_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_says_what_it_needs():
    assert registered_tasks() == set(NEEDS)


def test_the_deployed_workers_are_found():
    workers = {w.unit: w for w in deployed_workers()}
    assert workers["portal-sms-worker.service"].holds == {KEK}
    assert workers["portal-worker.service"].holds == set()
    assert workers["portal-worker.service"].queues == {settings.CELERY_TASK_DEFAULT_QUEUE, "batch"}


def test_every_task_runs_where_its_needs_are_met():
    workers = deployed_workers()
    for task, needs in NEEDS.items():
        queue = queue_of(task)
        consumers = [w for w in workers if queue in w.queues]
        assert consumers, f"{task} routes to {queue}, which no deployed worker consumes"
        for worker in consumers:
            missing = needs - worker.holds
            assert not missing, f"{task} on {queue} would run on {worker.unit} without {missing}"


def test_rekey_inits_run_where_the_kek_is_not_with_the_sending_tasks():
    """`send_rekey_inits` is named like the sending tasks but seals frames: it stays on the
    KEK queue even if the sending queue gets workers of its own."""
    assert queue_of("smsgateway.send_rekey_inits") == "sms"
    assert queue_of("smsgateway.send_due") == "sms_send"


def test_routes_name_tasks_literally():
    assert all("*" not in name for name in settings.CELERY_TASK_ROUTES)
    assert set(settings.CELERY_TASK_ROUTES) <= registered_tasks()
    beat_tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert beat_tasks <= registered_tasks()
