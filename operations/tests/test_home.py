"""The staff operations home: each role sees its own panels and links, with real figures."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.roles import (
    BILLING,
    FIELD_ENGINEER,
    REVENUE_PROTECTION,
    SECURITY_ADMIN,
    SUPPORT,
)
from devices.models import Meter, MeterStatus
from operations import runs, selectors
from operations.models import DailyReadRate
from readings.models import Reading

pytestmark = pytest.mark.django_db

PANEL_IDS = {"fleet", "billing", "revenue-protection", "security"}


@pytest.mark.parametrize(
    ("role", "panels", "links"),
    [
        (SUPPORT, {"fleet", "billing"}, ["/staff/billing/invoices/", "/admin/"]),
        (BILLING, {"fleet", "billing"}, ["/staff/billing/runs/", "/staff/billing/invoices/"]),
        (REVENUE_PROTECTION, {"fleet", "revenue-protection"}, ["/staff/fraud/"]),
        (SECURITY_ADMIN, {"fleet", "security"}, ["/admin/"]),
        (FIELD_ENGINEER, set(), ["/staff/dispatch/"]),
    ],
)
def test_each_role_sees_only_its_panels_and_pages(make_staff, verified_client, role, panels, links):
    user, device = make_staff("someone@example.org", roles=[role])
    page = verified_client(user, device).get("/staff/").content.decode()
    shown = {panel for panel in PANEL_IDS if f'id="{panel}"' in page}
    assert shown == panels
    for link in links:
        assert f'href="{link}"' in page
    if role != FIELD_ENGINEER:
        assert 'href="/staff/dispatch/"' not in page
    if role != REVENUE_PROTECTION:
        assert "/staff/runs/scan/start/" not in page
    assert ("/staff/runs/billing/start/" in page) == (role == BILLING)


def _day_of_readings(meter, day: date, hours: int) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    Reading.objects.bulk_create(
        Reading(meter=meter, hour=start + timedelta(hours=h), wh=h, source=1, received_at=start)
        for h in range(hours)
    )


def test_the_read_success_rate_counts_meters_with_all_24_readings_of_a_day(make_meter):
    now = timezone.now()
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    complete, partial, _quiet = (make_meter() for _ in range(3))
    Meter.objects.update(status=MeterStatus.ACTIVE)
    suspended = make_meter()
    Meter.objects.filter(pk=suspended.pk).update(status=MeterStatus.SUSPENDED)
    _day_of_readings(suspended, yesterday, 24)
    _day_of_readings(complete, yesterday, 24)
    _day_of_readings(partial, yesterday, 23)

    runs.count_read_rates(now=now, days=3)
    rates = selectors.read_rates(now=now, days=3)

    assert [r.day for r in rates] == [yesterday - timedelta(days=n) for n in (2, 1, 0)]
    assert (rates[-1].complete_meters, rates[-1].active_meters) == (1, 3)
    assert rates[0].complete_meters == 0


def test_a_stored_day_is_not_counted_again_but_yesterday_is(make_meter):
    now = timezone.now()
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    meter = make_meter()
    Meter.objects.update(status=MeterStatus.ACTIVE)
    assert len(runs.count_read_rates(now=now - timedelta(hours=2), days=2)) == 2
    _day_of_readings(meter, yesterday, 24)
    _day_of_readings(meter, yesterday - timedelta(days=1), 24)

    assert runs.count_read_rates(now=now, days=2) == [yesterday]
    assert runs.count_read_rates(now=now, days=2) == []  # counted within the hour
    rates = {r.day: r.complete_meters for r in selectors.read_rates(now=now, days=2)}

    # Late readings for yesterday count; an older day keeps its stored figure.
    assert rates == {yesterday: 1, yesterday - timedelta(days=1): 0}
    assert DailyReadRate.objects.count() == 2


def test_the_next_due_run_follows_the_accounts_cycle_days(make_tariff, make_account, settings):
    settings.BILLING_RUN_DELAY_DAYS = 2
    tariff = make_tariff({"unit_price": "0.20"})
    make_account(tariff, cycle_day=1, meter=False)
    make_account(tariff, cycle_day=15, meter=False)

    due = selectors.next_due_run(today=date(2026, 12, 5))

    assert (due.period_start, due.period_end, due.due_on) == (
        date(2026, 11, 15),
        date(2026, 12, 15),
        date(2026, 12, 17),
    )
    assert selectors.default_billing_period(today=date(2026, 12, 5), due=due) == date(2026, 10, 15)


def test_meters_are_counted_by_status_with_the_silent_ones(make_meter, settings):
    settings.METER_SILENCE_HOURS = 18
    now = timezone.now()
    heard, silent, never = (make_meter() for _ in range(3))
    Meter.objects.update(status=MeterStatus.ACTIVE)
    Meter.objects.filter(pk=heard.pk).update(last_message_at=now - timedelta(hours=2))
    Meter.objects.filter(pk=silent.pk).update(last_message_at=now - timedelta(hours=19))
    make_meter()  # registered, never active: not silent

    assert selectors.meter_counts(now=now) == ({"registered": 1, "active": 3}, 2)
    assert selectors.silent_meters(now=now) == [never, silent]  # longest silent first
