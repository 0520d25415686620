"""Starting and executing staff runs: queued on Celery, progress on the run's row, audited."""

from __future__ import annotations

from datetime import date, datetime

from django.db import IntegrityError, transaction

from audit.models import Outcome
from audit.services import record

from . import launch
from .models import ACTIVE_RUN_STATES, RunKind, StaffRun
from .tasks import execute_run as execute_run_task


class RunRefused(Exception):
    """A run cannot start; the message says why, for the member of staff."""


def _parameters(kind: str, period_start: date | None) -> dict:
    if kind != RunKind.BILLING:
        return {}
    if period_start is None:
        raise RunRefused("Choose the billing period to run.")
    try:
        launch.validate_billing_period(period_start)
    except ValueError as exc:
        raise RunRefused(f"Not a billing period: {exc}.") from exc
    return {"period_start": period_start.isoformat()}


def start_run(*, kind: str, by, now: datetime, period_start: date | None = None) -> StaffRun:
    """Queue a run of `kind` for `by`. Refused while one of the same kind is queued or running
    (the database's partial unique constraint decides, so two clicks cannot both start one)."""
    if kind not in launch.LAUNCHERS:
        raise RunRefused(f"Unknown kind of run: {kind}.")
    parameters = _parameters(kind, period_start)
    try:
        with transaction.atomic():
            run = StaffRun.objects.create(
                kind=kind, requested_by=by, requested_at=now, parameters=parameters
            )
            record(
                "operations.run_started",
                actor=by,
                target=f"{kind}-run:{run.pk}",
                details=parameters,
            )
            transaction.on_commit(lambda: execute_run_task.delay(run_id=run.pk))
    except IntegrityError:
        active = StaffRun.objects.filter(kind=kind, status__in=ACTIVE_RUN_STATES).first()
        record(
            "operations.run_refused",
            actor=by,
            target=f"{kind}-run",
            outcome=Outcome.DENIED,
            details={"active": active.pk if active else None},
        )
        since = f" (started {active.requested_at:%Y-%m-%d %H:%M} UTC by {active.requested_by})"
        raise RunRefused(
            f"A {RunKind(kind).label.lower()} is already {active.status if active else 'active'}"
            f"{since if active else ''}; wait for it to finish."
        ) from None
    return run
