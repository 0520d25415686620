"""The usage figures cached per meter in Redis: a customer never sees another's period or meter
from the cache, new readings show at once after their commit, and a cache that fails is only
slower."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import MeterOccupancy
from readings.services import datetime_to_hour, store_readings
from testing.customers import make_customer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

T0 = datetime(2026, 1, 10, tzinfo=UTC)
DAYS = {"resolution": "day", "start": "2026-01-09", "end": "2026-01-14"}


@pytest.fixture(autouse=True)
def _settled_at_once(settings):
    """Readings stored by a test are committed at once as far as it can tell (one transaction):
    no settling time, unless a test sets one."""
    settings.READINGS_USAGE_CACHE_SETTLE_SECONDS = 0


def put(meter, start: datetime, per_hour: int, hours: int, base: int = 1000) -> None:
    h0 = datetime_to_hour(start)
    rows = [(h0 + i, base + per_hour * i) for i in range(hours + 1)]
    store_readings(meter.pk, rows, received_at=start + timedelta(days=4))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def days(client, meter, params=DAYS) -> list[float | None]:
    response = client.get(f"/portal/meters/{meter.number}/usage.json", params)
    assert response.status_code == 200
    return [b["kwh"] for b in response.json()["buckets"]]


def reading_queries(client, meter, params=DAYS) -> int:
    with CaptureQueriesContext(connection) as queries:
        days(client, meter, params)
    return sum("readings_reading" in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_two_occupants_of_one_meter_and_a_neighbour_each_see_only_their_own(make_meter):
    shared, neighbour = make_meter(), make_meter()
    put(shared, T0, 100, 3 * 24)  # 2.4 kWh a day, 10-12 Jan
    put(neighbour, T0, 50, 3 * 24)  # 1.2 kWh a day
    moved_out = make_customer("before@example.com", shared, start=T0 - timedelta(days=30))
    MeterOccupancy.objects.filter(user=moved_out).update(end=T0 + timedelta(days=1))
    moved_in = make_customer("after@example.com", shared, start=T0 + timedelta(days=1))
    next_door = make_customer("next@example.com", neighbour, start=T0 - timedelta(days=30))
    before, after, other = signed_in(moved_out), signed_in(moved_in), signed_in(next_door)

    for _ in range(2):  # the second round is served from the cache
        assert days(before, shared) == [None, 2.4, None, None, None]
        assert days(after, shared) == [None, None, 2.4, 2.4, None]
        assert days(other, neighbour) == [None, 1.2, 1.2, 1.2, None]
    assert reading_queries(before, shared) == 0 and reading_queries(after, shared) == 0
    # Nobody reaches another's meter through a cached entry either.
    assert after.get(f"/portal/meters/{neighbour.number}/usage.json", DAYS).status_code == 404
    assert other.get(f"/portal/meters/{shared.number}/usage.json", DAYS).status_code == 404


@pytest.mark.django_db
def test_the_dashboard_figures_are_the_viewers_own(make_meter):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    shared = make_meter()
    put(shared, now - timedelta(days=20), 50, 20 * 24)
    moved_out = make_customer("before@example.com", shared, start=now - timedelta(days=30))
    MeterOccupancy.objects.filter(user=moved_out).update(end=now - timedelta(days=10))
    moved_in = make_customer("after@example.com", shared, start=now - timedelta(days=10))
    pages = {}
    for _ in range(2):
        for name, user in (("before", moved_out), ("after", moved_in)):
            response = signed_in(user).get(f"/portal/meters/{shared.number}/")
            assert response.status_code == 200
            pages[name] = response.context["current"]
    # The one who moved out sees the register when they left, not the newcomer's latest.
    assert pages["before"].hour < now - timedelta(days=10) + timedelta(hours=1)
    assert pages["after"].hour == now


@pytest.mark.django_db
def test_new_readings_show_at_once(make_meter, settings):
    meter = make_meter()
    put(meter, T0, 100, 24)
    client = signed_in(make_customer("owner@example.com", meter, start=T0 - timedelta(days=30)))
    assert days(client, meter) == [None, 2.4, None, None, None]
    assert reading_queries(client, meter) == 0  # cached
    settings.READINGS_USAGE_CACHE_SETTLE_SECONDS = 1
    put(meter, T0 + timedelta(days=1), 200, 24, base=1000 + 2400)
    assert days(client, meter) == [None, 2.4, 4.8, None, None]
    assert reading_queries(client, meter) > 0  # settling: computed, not kept
    time.sleep(1.5)  # settled: a new generation, kept again
    assert days(client, meter) == [None, 2.4, 4.8, None, None]
    assert reading_queries(client, meter) == 0


@pytest.mark.django_db
def test_a_failing_cache_only_costs_time(make_meter, settings):
    meter = make_meter()
    put(meter, T0, 100, 24)
    client = signed_in(make_customer("owner@example.com", meter, start=T0 - timedelta(days=30)))
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    assert days(client, meter) == [None, 2.4, None, None, None]
    put(meter, T0 + timedelta(days=1), 200, 24, base=1000 + 2400)
    assert days(client, meter) == [None, 2.4, 4.8, None, None]


@pytest.mark.django_db
def test_new_readings_show_at_once_with_a_cache_that_is_not_redis(make_meter, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    meter = make_meter()
    put(meter, T0, 100, 24)
    client = signed_in(make_customer("owner@example.com", meter, start=T0 - timedelta(days=30)))
    assert days(client, meter) == [None, 2.4, None, None, None]
    assert reading_queries(client, meter) == 0  # cached
    settings.READINGS_USAGE_CACHE_SETTLE_SECONDS = 60
    put(meter, T0 + timedelta(days=1), 200, 24, base=1000 + 2400)
    assert days(client, meter) == [None, 2.4, 4.8, None, None]
    assert reading_queries(client, meter) > 0  # settling: computed, not kept


@pytest.mark.django_db
def test_a_cache_given_as_a_list_of_servers_is_settled_too(make_meter, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": [settings.CACHES["default"]["LOCATION"]],
        }
    }
    test_new_readings_show_at_once(make_meter, settings)


@pytest.mark.django_db
def test_the_settling_mark_in_its_earlier_form_still_means_settling(make_meter):
    from django.core.cache import cache

    meter = make_meter()
    put(meter, T0, 100, 24)
    client = signed_in(make_customer("owner@example.com", meter, start=T0 - timedelta(days=30)))
    cache.set(f"readings:gen:{meter.pk}", "settling", timeout=60)
    assert days(client, meter) == [None, 2.4, None, None, None]
    assert reading_queries(client, meter) > 0  # computed, not kept
