"""Each detector fires on the synthetic pattern built for it and stays quiet on normal, seasonal
and holiday-shaped usage (PostgreSQL: the detectors are PostgreSQL SQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from devices.models import MeterEvent
from fraud.models import Case, CaseState, Cause, Resolution, Severity
from fraud.services import run_scan, transition
from readings.models import Reading
from smsgateway.models import InboundMessage, InboundStatus

from .conftest import NOW, TODAY, load_history, weekly

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def normal(index, day):
    return weekly(day)


def seasonal(index, day):
    # Spring: heating use falls from 15 kWh to 8 kWh a day over the 90 days, weekly shape kept.
    return weekly(day) * (1.6 - 0.7 * index / 90)


def winter_onset(index, day):
    return weekly(day) * (0.8 + 0.6 * index / 90)


def christmas_holiday(index, day):
    # Away for the last four days (fridge and standby only), and a long weekend in the baseline.
    if index >= 86 or index in (60, 61, 62):
        return 900
    return weekly(day)


def week_away_in_baseline(index, day):
    return 900 if 55 <= index < 62 else weekly(day)


def bypass(index, day):
    # Part of the load bypassed the meter ten days ago.
    return weekly(day) * (0.25 if index >= 80 else 1)


def zero_from_day_86(index, day):
    return 0 if index >= 86 else weekly(day)


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

    def add(name, pattern=normal, **kwargs):
        meter = premises_meter(**{k: v for k, v in kwargs.items() if k in ("premises",)})
        if pattern is not None:
            load_history(meter, pattern, seed=len(meters) + 1)
        meters[name] = meter
        return meter

    # Quiet ones.
    add("normal")
    add("seasonal_down", seasonal)
    add("seasonal_up", winter_onset)
    add("holiday", christmas_holiday)
    add("week_away_in_baseline", week_away_in_baseline)
    add("zero_vacant_no_history", lambda i, d: 0)
    add("zero_without_premises", zero_from_day_86, premises=False)
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
    add("bypass", bypass)
    add("zero", zero_from_day_86)
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
        "zero_use": 1,
        "silent": 1,
        "backwards": 1,
        "auth_failures": 1,
        "tamper": 2,
        "clock_step": 1,
    }
    by_meter = {case.meter_id: case for case in Case.objects.all()}
    drop = by_meter[fleet["bypass"].pk]
    assert drop.severity == Severity.MEDIUM and 0.6 < drop.evidence["drop"] < 0.9
    assert len(drop.evidence["days"]) == 7
    assert drop.evidence["chart"]["labels"] and drop.evidence["chart"]["datasets"][0]["data"]
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


def test_holiday_of_six_days_is_tolerated_but_a_seven_day_drop_is_not(premises_meter):
    six = premises_meter()
    load_history(six, lambda i, d: 900 if i >= 84 else weekly(d))
    seven = premises_meter()
    load_history(seven, lambda i, d: 900 if i >= 83 else weekly(d))
    run_scan(now=NOW, only=["consumption_drop"])
    assert set(Case.objects.values_list("meter_id", flat=True)) == {seven.pk}


def test_days_with_missing_readings_never_look_like_a_drop(premises_meter):
    meter = premises_meter()
    load_history(meter, normal)
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
