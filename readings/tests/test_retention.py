"""Retention: hourly readings past the billing and dispute windows become exact daily totals and
are deleted, emptied monthly partitions are dropped, and every step is audited and shown to the
customer. Nothing inside the windows is touched."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent, Outcome
from readings.models import DailyReading, Reading, RetentionAction, RetentionStep
from readings.partitions import (
    ensure_partitions,
    existing_partitions,
    partition_month,
    partition_name,
)
from readings.retention import Policy, RetentionPolicyError, apply_retention
from readings.selectors import Access, usage
from readings.services import datetime_to_hour, store_readings
from readings.tasks import ensure_partitions_task
from testing.customers import make_customer

# Partitions and the aggregation are PostgreSQL; the meters get keys under a KEK of their own.
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("kek")]

# Hourly readings are kept 100 days; the windows are 30 + 60 days. On NOW the boundary is
# 1 March 2025 (the month start at or before 100 days back).
POLICY = Policy(hourly_days=100, billing_window_days=30, dispute_window_days=60)
NOW = datetime(2025, 6, 15, 12, tzinfo=UTC)
BOUNDARY = datetime(2025, 3, 1, tzinfo=UTC)
START = datetime(2025, 1, 20, tzinfo=UTC)


@pytest.fixture
def partitions(db):
    """The months around the boundary have their own partitions, whatever today is."""
    ensure_partitions(today=NOW.date(), months_back=6, months_ahead=0)


def put(meter, history: list[tuple[datetime, int]]) -> None:
    rows = [(datetime_to_hour(hour), wh) for hour, wh in history]
    store_readings(meter.pk, rows, received_at=NOW)


def history_from(runs: list[tuple[int, int, int]], start: datetime) -> list[tuple[datetime, int]]:
    """Runs of (hours between readings, register change, how many readings)."""
    hour, wh, history = start, 10_000, []
    for gap, change, repeat in runs:
        for _ in range(repeat):
            hour += timedelta(hours=gap)
            wh = max(0, wh + change)
            history.append((hour, wh))
    return history


def expected_days(history: list[tuple[datetime, int]], before: datetime) -> dict:
    """What a daily total must hold, computed here from the hourly readings it replaces: the
    last field is the set of hours that had a usage figure (spans the register did not fall)."""
    days: dict[date, list[tuple[datetime, int]]] = defaultdict(list)
    for hour, wh in sorted(history):
        if hour < before:
            days[hour.date()].append((hour, wh))
    return {
        day: (
            rows[0][0],
            rows[0][1],
            rows[-1][0],
            rows[-1][1],
            len(rows),
            sum(max(0, b - a) for (_, a), (_, b) in pairwise(rows)),
            {h for (t0, a), (t1, b) in pairwise(rows) if b >= a for h in range(t0.hour, t1.hour)},
        )
        for day, rows in days.items()
    }


def daily_of(meter) -> dict:
    return {
        d.day: (
            d.first_hour,
            d.first_wh,
            d.last_hour,
            d.last_wh,
            d.readings,
            d.usage_wh,
            {h for h in range(24) if d.hours_with_usage >> h & 1},
        )
        for d in DailyReading.objects.filter(meter=meter)
    }


def rises(registers: list[int]) -> int:
    return sum(max(0, b - a) for a, b in pairwise(registers))


def stored(meter) -> list[tuple]:
    return list(
        Reading.objects.filter(meter=meter)
        .order_by("hour")
        .values_list("hour", "wh", "source", "received_at")
    )


runs = st.lists(
    st.tuples(
        st.sampled_from([1, 1, 1, 2, 5, 23, 30]),
        st.integers(-300, 2_000),
        st.integers(1, 150),
    ),
    min_size=1,
    max_size=10,
)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=runs, second=runs, offset=st.integers(0, 24 * 30))
def test_daily_aggregates_equal_the_hourly_sums_they_replace(
    make_meter,
    partitions,
    first,
    second,
    offset,
):
    DailyReading.objects.all().delete()
    Reading.objects.all().delete()
    meters = [make_meter(), make_meter()]
    histories = [history_from(first, START), history_from(second, START + timedelta(hours=offset))]
    for meter, history in zip(meters, histories, strict=True):
        put(meter, history)
    kept_before = [stored(meter) for meter in meters]

    apply_retention(now=NOW, policy=POLICY)

    for meter, history, before in zip(meters, histories, kept_before, strict=True):
        daily = daily_of(meter)
        assert daily == expected_days(history, BOUNDARY)
        # Every hourly reading from the boundary on is untouched, and no older one is left.
        assert stored(meter) == [row for row in before if row[0] >= BOUNDARY]
        # The meter's whole usage, read from daily totals and the hourly readings left, is
        # what it was: within a day from the total, across days from first and last registers.
        days = sorted(daily.values())
        remaining = [wh for _, wh, *_ in stored(meter)]
        lasts = [day[3] for day in days]
        nexts = [day[1] for day in days[1:]] + remaining[:1]
        crossings = sum(max(0, b - a) for a, b in zip(lasts, nexts, strict=False))
        within_days = sum(day[5] for day in days)
        assert within_days + crossings + rises(remaining) == rises([wh for _, wh in history])


@pytest.mark.django_db
def test_nothing_inside_the_windows_is_touched(make_meter, partitions):
    meter = make_meter()
    windows_start = NOW - timedelta(days=POLICY.windows_days)
    history = [
        (BOUNDARY - timedelta(hours=48) + timedelta(hours=i), 1_000 + 10 * i)
        for i in range(int((NOW - BOUNDARY).total_seconds() // 3600) + 48)
    ]
    put(meter, history)
    inside_windows = [row for row in stored(meter) if row[0] >= windows_start]

    apply_retention(now=NOW, policy=POLICY)

    assert POLICY.boundary(NOW) == BOUNDARY <= windows_start
    assert [row for row in stored(meter) if row[0] >= windows_start] == inside_windows
    assert stored(meter)[0][0] == BOUNDARY  # the two days before it are now daily totals
    assert DailyReading.objects.filter(meter=meter).count() == 2


@given(
    hourly=st.integers(0, 3_000),
    billing=st.integers(0, 400),
    dispute=st.integers(0, 1_000),
    now=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_boundary_is_a_month_start_outside_every_window(hourly, billing, dispute, now):
    policy = Policy(hourly_days=hourly, billing_window_days=billing, dispute_window_days=dispute)
    boundary = policy.boundary(now)
    assert boundary.day == 1 and boundary.time() == datetime.min.time()
    assert boundary <= now - timedelta(days=hourly)
    if policy.problem() is None:
        assert boundary <= now - timedelta(days=billing + dispute)


@pytest.mark.django_db
def test_a_policy_reaching_into_the_windows_is_refused_audited_and_changes_nothing(
    make_meter,
    partitions,
    settings,
):
    meter = make_meter()
    put(meter, [(START + timedelta(hours=i), 100 * i) for i in range(48)])
    before = stored(meter)
    settings.READINGS_HOURLY_RETENTION_DAYS = 80  # the windows are 30 + 60 days
    settings.READINGS_BILLING_WINDOW_DAYS = 30
    settings.READINGS_DISPUTE_WINDOW_DAYS = 60

    with pytest.raises(RetentionPolicyError, match="inside the billing and dispute windows"):
        apply_retention(now=NOW)
    with pytest.raises(CommandError, match="retention refused"):
        call_command("apply_retention")

    assert stored(meter) == before and not DailyReading.objects.exists()
    refusal = AuditEvent.objects.filter(action="readings.retention").latest("seq")
    assert refusal.outcome == Outcome.FAILURE
    assert "inside the billing and dispute windows" in refusal.details["reason"]


@pytest.mark.django_db
def test_old_partitions_are_dropped_and_never_recreated(make_meter, partitions):
    meter = make_meter()
    put(meter, [(START + timedelta(hours=i), 5 * i) for i in range(24 * 50)])  # to 10 March
    january, february, march = (partition_name(date(2025, m, 1)) for m in (1, 2, 3))

    steps = apply_retention(now=NOW, policy=POLICY)

    dropped = [s.detail for s in steps if s.action == RetentionAction.DROP_PARTITION]
    assert dropped[-2:] == ["January 2025", "February 2025"]
    assert {january, february}.isdisjoint(existing_partitions()) and march in existing_partitions()
    months_left = {partition_month(name) for name in existing_partitions()} - {None}
    assert min(months_left) == BOUNDARY.date()
    assert (
        ensure_partitions(
            today=NOW.date(), months_back=6, months_ahead=0, not_before=POLICY.first_kept_month(NOW)
        )
        == []
    )
    # A late reading for a dropped month lands in the default partition; the next run folds it
    # into its day and drops nothing more.
    put(meter, [(datetime(2025, 2, 3, 7, tzinfo=UTC), 1)])
    steps = apply_retention(now=NOW, policy=POLICY)
    assert [(s.action, s.count, s.detail) for s in steps] == [
        (RetentionAction.FOLD_LATE, 1, "February 2025, 1 within a day's readings")
    ]
    assert not Reading.objects.filter(meter=meter, hour__lt=BOUNDARY).exists()


@pytest.mark.django_db
def test_the_partition_task_keeps_dropped_months_dropped(settings, partitions):
    settings.READINGS_HOURLY_RETENTION_DAYS = 760
    boundary = Policy.from_settings().first_kept_month(datetime.now(UTC))
    created = ensure_partitions_task()
    assert all(name >= partition_name(boundary) for name in created)


@pytest.mark.django_db
def test_each_step_is_audited_and_shown_to_the_customer(make_meter, partitions, client):
    meter = make_meter()
    put(meter, [(START + timedelta(hours=i), 5 * i) for i in range(24 * 50)])
    resident = make_customer("resident@example.com", meter, start=START - timedelta(days=30))
    newcomer = make_customer("newcomer@example.com", make_meter(), start=BOUNDARY)

    steps = apply_retention(now=NOW, policy=POLICY)

    def done(action):
        return [(s.detail, s.count) for s in steps if s.action == action]

    assert done(RetentionAction.AGGREGATE) == [("January 2025", 12), ("February 2025", 28)]
    assert done(RetentionAction.DELETE) == [("January 2025", 12 * 24), ("February 2025", 28 * 24)]
    assert done(RetentionAction.DROP_PARTITION)[-2:] == [("January 2025", 1), ("February 2025", 1)]
    audited = AuditEvent.objects.filter(action="readings.retention").order_by("seq")
    assert [(e.details["action"], e.details["count"]) for e in audited] == [
        (s.action, s.count) for s in steps
    ]

    client.force_login(resident)
    page = client.get("/portal/retention/").content.decode()
    assert "Hourly readings summed into daily totals (February 2025)" in page
    assert "Monthly table of hourly readings dropped (January 2025)" in page
    assert "1 Mar 2025" in page
    client.force_login(newcomer)
    page = client.get("/portal/retention/").content.decode()
    assert "None of your readings has reached that age yet" in page
    assert RetentionStep.objects.count() == len(steps)


@pytest.mark.django_db
def test_the_portal_shows_the_same_daily_and_monthly_usage_after_retention(
    make_meter,
    partitions,
    client,
):
    meter = make_meter()
    history = history_from(
        [(1, 120, 300), (5, 600, 1), (1, -50, 1), (1, 90, 500), (1, 0, 40)], START
    )
    put(meter, history)
    client.force_login(make_customer("resident@example.com", meter, start=START))
    windows = {
        "day": {"resolution": "day", "start": "2025-01-18", "end": "2025-03-20"},
        "month": {"resolution": "month", "start": "2025-01-01", "end": "2025-04-01"},
    }

    def charts():
        url = f"/portal/meters/{meter.number}/usage.json"
        return {
            name: [(b["kwh"], b["complete"]) for b in client.get(url, query).json()["buckets"]]
            for name, query in windows.items()
        }

    before = charts()
    apply_retention(now=NOW, policy=POLICY)

    # The totals and completeness are those of the readings replaced (the history has a step
    # backwards: that day stays incomplete).
    assert DailyReading.objects.filter(meter=meter).exists()
    assert charts() == before
    assert any(kwh and not complete for kwh, complete in before["day"])


WINDOWS = {
    "day": (datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 3, 25, tzinfo=UTC)),
    "month": (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)),
}


def figures(meter) -> dict:
    """The portal's daily and monthly usage and counted hours (completeness)."""
    access = Access(meter, START - timedelta(days=3), None)
    return {
        name: [(b.wh, b.hours) for b in usage(access, name, *window)]
        for name, window in WINDOWS.items()
    }


def assert_same_figures(got: dict, expected: dict) -> None:
    for name, buckets in expected.items():
        assert [hours for _, hours in got[name]] == [hours for _, hours in buckets], name
        for (wh, _), (want, _) in zip(got[name], buckets, strict=True):
            assert (wh is None) == (want is None) and abs((wh or 0) - (want or 0)) < 1e-6, name


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history_runs=runs, data=st.data())
def test_late_readings_count_as_if_they_had_arrived_on_time(
    make_meter,
    partitions,
    history_runs,
    data,
):
    """Readings held back from the start or end of days are stored after retention aggregated
    the rest: the portal's figures are those of the whole history at once, before the next run
    folds them in and after, and the daily totals are those of the whole history."""
    DailyReading.objects.all().delete()
    Reading.objects.all().delete()
    meter = make_meter()
    history = history_from(history_runs, START)
    put(meter, history)
    on_time = figures(meter)
    days: dict[date, list] = defaultdict(list)
    for row in history:
        days[row[0].date()].append(row)
    late = []
    for rows in days.values():
        first = data.draw(st.integers(0, len(rows)))
        last = data.draw(st.integers(0, len(rows) - first))
        late += rows[:first] + rows[len(rows) - last :]
    Reading.objects.filter(meter=meter, hour__in=[hour for hour, _ in late]).delete()
    apply_retention(now=NOW, policy=POLICY)
    put(meter, late)

    assert_same_figures(figures(meter), on_time)
    steps = apply_retention(now=NOW, policy=POLICY)
    assert_same_figures(figures(meter), on_time)
    assert daily_of(meter) == expected_days(history, BOUNDARY)
    assert not Reading.objects.filter(meter=meter, hour__lt=BOUNDARY).exists()
    folded = [s for s in steps if s.action == RetentionAction.FOLD_LATE]
    late_per_day = Counter(hour.date() for hour, _ in late)
    on_aggregated_days = sum(
        n for day, n in late_per_day.items() if day < BOUNDARY.date() and n < len(days[day])
    )
    assert sum(s.count for s in folded) == on_aggregated_days


@pytest.mark.django_db
def test_a_resent_reading_within_an_aggregated_day_changes_nothing(make_meter, partitions):
    meter = make_meter()
    put(meter, [(START + timedelta(hours=i), 10 * i + (500 if i > 30 else 0)) for i in range(72)])
    apply_retention(now=NOW, policy=POLICY)
    daily = daily_of(meter)
    shown = figures(meter)

    put(meter, [(START + timedelta(hours=30), 300), (START + timedelta(hours=40), 999_999)])
    assert_same_figures(figures(meter), shown)
    steps = apply_retention(now=NOW, policy=POLICY)

    assert daily_of(meter) == daily and not Reading.objects.filter(meter=meter).exists()
    assert [(s.action, s.count, s.detail) for s in steps] == [
        (RetentionAction.FOLD_LATE, 2, "January 2025, 2 within a day's readings")
    ]
    audited = AuditEvent.objects.filter(action="readings.retention").latest("seq")
    assert audited.details["action"] == RetentionAction.FOLD_LATE and audited.details["count"] == 2


def export(client, meter) -> list[list[str]]:
    response = client.get(f"/portal/meters/{meter.number}/readings.csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
def test_the_export_covers_daily_totals_and_late_readings(make_meter, partitions, client):
    meter = make_meter()
    history = history_from(
        [(1, 120, 300), (5, 600, 1), (1, -50, 1), (1, 90, 500), (1, 10, 400)], START
    )
    put(meter, history)
    client.force_login(make_customer("resident@example.com", meter, start=START))
    before = export(client, meter)

    apply_retention(now=NOW, policy=POLICY)
    late_hour = datetime(2025, 1, 20, 0, tzinfo=UTC)  # before the first reading, on an old day
    put(meter, [(late_hour, 9_000)])
    rows = export(client, meter)

    assert rows[0][-1] == "period" and before[0] == rows[0]
    daily = [row for row in rows[1:] if row[-1] == "day"]
    hourly = [row for row in rows[1:] if row[-1] == "hour"]
    expected = expected_days([*history, (late_hour, 9_000)], BOUNDARY)
    assert [row[0] for row in daily] == [
        datetime.combine(day, datetime.min.time(), UTC).isoformat() for day in sorted(expected)
    ]
    assert daily[0][3] == f"daily total of {expected[min(expected)][4]} hourly readings"
    assert [row[0] for row in hourly] == [r[0] for r in before[1:] if r[0] >= BOUNDARY.isoformat()]
    # The used column adds up to the same whole usage, daily totals included.
    late_rise = (history[0][1] - 9_000) if history[0][1] > 9_000 else 0
    used = sum(float(row[2] or 0) for row in rows[1:])
    assert used == pytest.approx(sum(float(r[2] or 0) for r in before[1:]) + late_rise / 1000)
    assert [row[1] for row in daily] == [
        f"{expected[day][3] / 1000:.3f}" for day in sorted(expected)
    ]


@pytest.mark.django_db
def test_the_customer_navigation_links_the_retention_page(make_meter, client):
    client.force_login(make_customer("resident@example.com", make_meter(), start=START))
    assert 'href="/portal/retention/"' in client.get("/accounts/settings/").content.decode()
