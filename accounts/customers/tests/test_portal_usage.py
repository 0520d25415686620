"""Portal usage: aggregation in the database, gaps and estimates, occupancy limits, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from accounts.customers.portal.views import csv_safe
from readings.services import datetime_to_hour, store_readings
from testing.customers import make_customer

pytestmark = pytest.mark.postgres  # the aggregation under test is PostgreSQL SQL

T0 = datetime(2026, 1, 10, tzinfo=UTC)


def put(meter, start: datetime, values: list[int | None]) -> None:
    """Hourly register values from `start`; None leaves the hour missing."""
    h0 = datetime_to_hour(start)
    rows = [(h0 + i, wh) for i, wh in enumerate(values) if wh is not None]
    store_readings(meter.pk, rows, received_at=start + timedelta(days=1))


@pytest.fixture
def owner(make_meter, client):
    meter = make_meter()
    user = make_customer("owner@example.com", meter, start=T0 - timedelta(days=400))
    client.force_login(user)
    return meter


def usage(client, meter, **params):
    return client.get(f"/portal/meters/{meter.number}/usage.json", params)


@pytest.mark.django_db
def test_hourly_usage_is_the_difference_of_readings_and_gaps_are_spread(client, owner):
    # 1000 → 1100 → 1300 → (missing) → 1700 → 1800: the missing hour shares 400 Wh evenly.
    put(owner, T0, [1000, 1100, 1300, None, 1700, 1800])
    data = usage(client, owner, resolution="hour", start="2026-01-10", end="2026-01-11").json()
    buckets = data["buckets"][:6]
    assert [b["kwh"] for b in buckets] == [0.1, 0.2, 0.2, 0.2, 0.1, None]
    assert [b["estimated"] for b in buckets] == [False, False, True, True, False, False]
    assert len(data["buckets"]) == 24 and data["buckets"][10]["kwh"] is None  # no data: a gap


@pytest.mark.django_db
def test_daily_and_monthly_totals(client, owner):
    # Three days of 100 Wh an hour from 2026-01-10 00:00.
    put(owner, T0, [i * 100 for i in range(3 * 24 + 1)])
    days = usage(client, owner, resolution="day", start="2026-01-09", end="2026-01-14").json()
    assert [b["kwh"] for b in days["buckets"]] == [None, 2.4, 2.4, 2.4, None]
    assert all(b["complete"] for b in days["buckets"][1:4])
    months = usage(client, owner, resolution="month", start="2025-12-01", end="2026-02-01").json()
    assert [b["kwh"] for b in months["buckets"]] == [None, 7.2]
    assert months["buckets"][1]["complete"] is False  # only 3 of 31 days


@pytest.mark.django_db
def test_register_going_backwards_gives_no_usage(client, owner):
    put(owner, T0, [5000, 5100, 10, 110])
    data = usage(client, owner, resolution="hour", start="2026-01-10", end="2026-01-11").json()
    assert [b["kwh"] for b in data["buckets"][:3]] == [0.1, None, 0.1]


@pytest.mark.django_db
def test_usage_before_the_occupancy_is_not_shown(client, make_meter):
    meter = make_meter()
    put(meter, T0, [i * 100 for i in range(49)])
    client.force_login(make_customer("late@example.com", meter, start=T0 + timedelta(days=1)))
    data = usage(client, meter, resolution="day", start="2026-01-10", end="2026-01-12").json()
    assert [b["kwh"] for b in data["buckets"]] == [None, 2.4]
    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(
                    client.get(f"/portal/meters/{meter.number}/readings.csv").streaming_content
                ).decode()
            )
        )
    )
    assert rows[1][0] == (T0 + timedelta(days=1)).isoformat() and len(rows) == 1 + 25


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"resolution": "minute"},
        {"resolution": "hour", "start": "2026-01-01"},
        {"resolution": "hour", "start": "2026-01-01", "end": "2026-03-01"},
        {"resolution": "day", "start": "2026-01-02", "end": "2026-01-01"},
        {"resolution": "day", "start": "2026-13-01", "end": "2026-01-01"},
        {"resolution": "day", "end": ""},  # given empty is not "not given"
        {"resolution": "day", "start": "", "end": ""},
        {},
    ],
)
def test_bad_parameters_are_a_clear_400(client, owner, params):
    response = usage(client, owner, **params)
    assert response.status_code == 400 and "errors" in response.json()


@pytest.mark.django_db
def test_default_windows_have_the_promised_length(client, owner):
    lengths = {
        r: len(usage(client, owner, resolution=r).json()["buckets"])
        for r in ("hour", "day", "month")
    }
    assert lengths == {"hour": 48, "day": 60, "month": 24}


@pytest.mark.django_db
def test_dashboard_shows_current_reading_and_comparisons(client, owner):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    put(owner, now - timedelta(days=20), [i * 50 for i in range(20 * 24 + 1)])
    response = client.get(f"/portal/meters/{owner.number}/")
    assert response.status_code == 200
    current = response.context["current"]
    assert current.kwh == 20 * 24 * 50 / 1000 and current.hour == now
    week = response.context["comparisons"]["week"]
    assert week["last"] is not None and (week["this"] or 0) >= 0
    assert b"chart-hour" in response.content and b"vendor/chartjs/chart.umd." in response.content


@pytest.mark.django_db
def test_csv_export_streams_own_readings(client, owner):
    put(owner, T0, [1000, 1250, 1500])
    response = client.get(f"/portal/meters/{owner.number}/readings.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["hour_start_utc", "register_kwh", "used_kwh"]
    assert [r[1:3] for r in rows[1:]] == [["1.000", ""], ["1.250", "0.250"], ["1.500", "0.250"]]


@pytest.mark.parametrize("value", ["=HYPERLINK(1)", "+1", "-1+2", "@SUM(A1)", "\tx"])
def test_csv_cells_cannot_start_a_formula(value):
    assert csv_safe(value).startswith("'")
    assert csv_safe("2026-01-01T00:00:00+00:00") == "2026-01-01T00:00:00+00:00"


@pytest.mark.django_db
def test_far_off_dates_are_a_400_not_a_crash(client, make_meter):
    meter = make_meter()
    user = make_customer("far@example.com", meter, start=datetime.now(UTC) - timedelta(days=3))
    client.force_login(user)
    url = f"/portal/meters/{meter.number}/usage.json"
    response = client.get(url, {"resolution": "month", "start": "9999-11-01", "end": "9999-12-31"})
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_newly_claimed_meter_says_from_when_its_history_is_shown(make_meter, client):
    meter = make_meter()
    claimed = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    put(meter, claimed - timedelta(days=3), [i * 50 for i in range(48)])  # before the claim
    client.force_login(make_customer("new@example.com", meter, start=claimed))
    page = client.get(f"/portal/meters/{meter.number}/").content.decode()
    print("PAGE", page[page.find("current-reading") :][:600])
    assert "You see this meter's readings from 30 Nov 2026, 14:00" in page
    assert "chart-hour" not in page  # no empty charts


@pytest.mark.django_db
def test_the_staff_usage_table_shows_kwh(make_meter, make_staff, verified_client):
    meter = make_meter()
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    put(meter, day - timedelta(days=2), [i * 500 for i in range(49)])  # 12 kWh a day
    user, device = make_staff("support@example.com", roles=["Support"])
    page = verified_client(user, device).get(f"/staff/meters/{meter.number}/usage/")
    assert "<td>12.0</td>" in page.content.decode()
