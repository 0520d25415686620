"""The billing and revenue-protection entry points the staff runs call: the only module here
that knows them, so a change to how billing runs or scans start is made in one place.

Each launcher takes the run's parameters, who started it, the time, and a `report(done, total,
message)` callback, and returns a small JSON-able summary.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from billing import services as billing_services
from fraud import services as fraud_services

Report = Callable[[int, int, str], None]
Launcher = Callable[[dict, str, datetime, Report], dict]


def billing_period(parameters: dict) -> tuple[date, date]:
    start = date.fromisoformat(parameters["period_start"])
    return start, billing_services.add_months(start, 1)


def run_billing(parameters: dict, by: str, now: datetime, report: Report) -> dict:
    """Start (or resume) the period's billing run on the batch workers, the same way the beat
    does (`billing.services.start_billing_run`: its chunks as a chord with a final tally). This
    staff run ends once the chunks are queued; the billing run's own progress is on the billing
    runs page (`billing.selectors.run_progress`)."""
    start, end = billing_period(parameters)
    run = billing_services.start_billing_run(start, end, by=by)
    report(
        0, run.accounts_total, f"{run.accounts_total} accounts queued in {run.chunks_total} chunks"
    )
    return {
        "billing_run": run.pk,
        "period": f"{start} to {end}",
        "accounts": run.accounts_total,
        "chunks": run.chunks_total,
    }


def run_scan(parameters: dict, by: str, now: datetime, report: Report) -> dict:
    detectors_done = []

    def progress(message: str) -> None:
        if not message.startswith(" "):
            detectors_done.append(message)
        report(len(detectors_done), 0, message.strip())

    scan = fraud_services.run_scan(now=now, actor=by, progress=progress)
    return {
        "opened": scan.opened,
        "detectors": {run.name: run.findings for run in scan.runs},
    }


LAUNCHERS: dict[str, Launcher] = {"billing": run_billing, "scan": run_scan}


def validate_billing_period(period_start: date) -> None:
    """Refuse a period the billing run itself would refuse, before anything is queued."""
    if not 1 <= period_start.day <= 28:
        raise ValueError("a billing period starts on day 1 to 28 of a month")
