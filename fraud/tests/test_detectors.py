"""Each detector fires on the pattern built for it and stays quiet on realistic households
(PostgreSQL: the detectors are PostgreSQL SQL). Per-attack and look-alike detection is in
test_detection.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from devices.models import MeterEvent
from fraud import attacks
from fraud.models import Case, CaseState, Cause, Resolution, Severity
from fraud.services import run_scan, transition
from readings.models import Reading
from smsgateway.models import InboundMessage, InboundStatus

from .conftest import HISTORY_DAYS, NOW, TODAY, household_history, load_history

# Households of the evaluation's test split (odd seeds).
QUIET_SEEDS = (1, 3, 5, 7, 9, 11)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def zero_for_four_days(series, start, rng):
    return [0 if i >= 24 * (HISTORY_DAYS - 4) else v for i, v in enumerate(series)]


def _rejected(sender, reason, n, *, hours_ago=1):
    for i in range(n):
        InboundMessage.objects.create(
            gateway="test",
            dedupe_key=f"{sender}-{reason}-{i}-{hours_ago}",
            sender=sender,
            payload=b"x",
            received_at=NOW - timedelta(hours=hours_ago, minutes=i),
            status=InboundStatus.REJECTED,
            reason=reason,
        )


def _event(meter, kind, arg=0, *, hours_ago=5):
    MeterEvent.objects.create(
        meter=meter,
        kind=kind,
        arg=arg,
        occurred_at=NOW - timedelta(hours=hours_ago),
        received_at=NOW - timedelta(hours=hours_ago - 1),
    )


@pytest.fixture
def fleet(premises_meter):
    """One meter per pattern; returns {name: meter}."""
    meters = {}

    def add(name, change=None, **kwargs):
        meter = premises_meter(**{k: v for k, v in kwargs.items() if k in ("premises",)})
        household_history(meter, QUIET_SEEDS[len(meters) % len(QUIET_SEEDS)], change)
        meters[name] = meter
        return meter

    # Quiet ones (realistic households; the per-attack tests are in test_detection.py).
    add("normal")
    add("seasonal_down", attacks.seasonal_change)
    add("solar", attacks.rooftop_solar)
    add("working_from_home", attacks.working_from_home)
    vacant = premises_meter()
    load_history(vacant, lambda i, d: 0)
    meters["zero_vacant_no_history"] = vacant
    add("zero_without_premises", zero_for_four_days, premises=False)
    quiet_auth = add("few_auth_failures")
    _rejected(quiet_auth.sim.msisdn, "auth_failed", 2)
    _rejected(quiet_auth.sim.msisdn, "malformed", 10)
    quiet_events = add("reboot_and_small_clock_step")
    _event(quiet_events, "reboot")
    _event(quiet_events, "clock_step", 30)
    old_tamper = add("tamper_long_ago")
    MeterEvent.objects.create(
        meter=old_tamper,
        kind="tamper",
        occurred_at=NOW - timedelta(days=20),
        received_at=NOW - timedelta(days=20),
    )
    recently_heard = add("heard_ten_hours_ago")
    recently_heard.last_message_at = NOW - timedelta(hours=10)
    recently_heard.save()

    # Ones that must fire.
    add("bypass", attacks.partial_bypass(0.6))
    add("zero", zero_for_four_days)
    silent = add("silent")
    silent.last_message_at = NOW - timedelta(hours=72)
    silent.save()
    backwards = add("backwards")
    reading = Reading.objects.get(meter=backwards, hour=NOW - timedelta(hours=5))
    Reading.objects.filter(meter=backwards, hour=reading.hour).update(wh=reading.wh - 5000)
    auth = add("auth_burst")
    _rejected(auth.sim.msisdn, "auth_failed", 3)
    _rejected(auth.sim.msisdn, "replay", 3)
    tampered = add("tamper")
    _event(tampered, "tamper", 1)
    serviced = add("service_action")
    _event(serviced, "service_action", 7)
    clock = add("clock_step")
    _event(clock, "clock_step", -7200)
    return meters


EXPECTED = {
    ("bypass", Cause.CONSUMPTION_DROP),
    ("zero", Cause.ZERO_USE),
    ("silent", Cause.SILENT),
    ("backwards", Cause.BACKWARDS),
    ("auth_burst", Cause.AUTH_FAILURES),
    ("tamper", Cause.TAMPER),
    ("service_action", Cause.TAMPER),
    ("clock_step", Cause.CLOCK_STEP),
}


def _opened(meters):
    names = {meter.pk: name for name, meter in meters.items()}
    return {(names[case.meter_id], case.cause) for case in Case.objects.all()}


def test_each_detector_fires_on_its_pattern_and_nowhere_else(fleet):
    report = run_scan(now=NOW)
    assert _opened(fleet) == EXPECTED
    assert {run.name: run.opened for run in report.runs} == {
        "consumption_drop": 1,
        "load_shape": 0,
        "peer_comparison": 0,  # a handful of meters is no fleet: no peer group to judge by
        "zero_use": 1,
        "silent": 1,
        "backwards": 1,
        "auth_failures": 1,
        "tamper": 2,
        "clock_step": 1,
    }
    by_meter = {case.meter_id: case for case in Case.objects.all()}
    drop = by_meter[fleet["bypass"].pk]
    assert 0.45 < drop.evidence["drop"] < 0.75 and drop.evidence["estimated_kwh_lost"] > 20
    # The change-point dates the bypass (28 days ago) within a few days.
    since = date.fromisoformat(drop.evidence["since"])
    assert TODAY.date() - timedelta(days=31) <= since <= TODAY.date() - timedelta(days=25)
    assert drop.evidence["chart"]["labels"] and drop.evidence["chart"]["datasets"][1]["data"]
    assert by_meter[fleet["tamper"].pk].severity == Severity.HIGH
    assert by_meter[fleet["service_action"].pk].severity == Severity.MEDIUM
    assert by_meter[fleet["backwards"].pk].evidence["largest_step_wh"] >= 4000
    assert by_meter[fleet["auth_burst"].pk].evidence["reasons"] == {"auth_failed": 3, "replay": 3}
    assert by_meter[fleet["clock_step"].pk].evidence["largest_seconds"] == 7200
    assert AuditEvent.objects.filter(action="fraud.case_opened").count() == len(EXPECTED)


def test_a_rescan_refreshes_cases_instead_of_duplicating_them(fleet):
    run_scan(now=NOW)
    first = {case.pk for case in Case.objects.all()}
    report = run_scan(now=NOW + timedelta(hours=1))
    assert {case.pk for case in Case.objects.all()} == first
    assert report.opened == 0
    assert sum(run.updated for run in report.runs) == len(EXPECTED)


def test_a_closed_case_reopens_only_on_newer_data(fleet, django_user_model):
    run_scan(now=NOW)
    case = Case.objects.get(meter=fleet["tamper"], cause=Cause.TAMPER)
    later = NOW + timedelta(hours=1)
    transition(case, CaseState.RESOLVED, by="test", now=later, resolution=Resolution.NO_FAULT)
    transition(case, CaseState.CLOSED, by="test", now=later)
    run_scan(now=later)
    assert Case.objects.filter(meter=fleet["tamper"], cause=Cause.TAMPER).count() == 1
    # A new tamper event after the closure opens a new case.
    MeterEvent.objects.create(
        meter=fleet["tamper"],
        kind="tamper",
        arg=2,
        occurred_at=later + timedelta(hours=1),
        received_at=later + timedelta(hours=1),
    )
    run_scan(now=later + timedelta(hours=2))
    cases = Case.objects.filter(meter=fleet["tamper"], cause=Cause.TAMPER)
    assert cases.count() == 2 and cases.filter(state=CaseState.OPEN).count() == 1


def test_days_with_missing_readings_never_look_like_a_drop(premises_meter):
    meter = premises_meter()
    household_history(meter, QUIET_SEEDS[0])
    # The last eight days arrived only partly (a gap, not low use).
    Reading.objects.filter(meter=meter, hour__gte=TODAY - timedelta(days=8), hour__lt=TODAY).extra(
        where=["extract(hour from hour) < 12"]
    ).delete()
    run_scan(now=NOW, only=["consumption_drop", "zero_use"])
    assert not Case.objects.exists()


def test_run_detectors_command_reports_progress(fleet, capsys):
    call_command("run_detectors", "--now", NOW.isoformat(), "--only", "silent")
    out = capsys.readouterr().out
    assert "silent" in out and "1 case(s) opened" in out
    assert Case.objects.get().cause == Cause.SILENT


def test_beat_task_runs_the_scan(fleet, settings):
    from fraud.tasks import run_detectors

    assert "fraud-run-detectors" in settings.CELERY_BEAT_SCHEDULE
    # As of the real clock the synthetic history is old, so at least the silent detector fires.
    assert run_detectors.delay().get() >= 1
