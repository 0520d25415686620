"""Storing readings: each (meter, hour) once, a repeat of the same value a duplicate, a
different value a conflict set aside. The hint of hours already stored (ingest's high-water
mark) only chooses how the rows are written: whatever it says, right, too low or too high,
the stored rows, conflicts and counts are those of the checked path alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readings.models import Reading, ReadingConflict, Source
from readings.services import datetime_to_hour, hour_to_datetime, store_many_readings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

RECEIVED = datetime(2026, 3, 1, tzinfo=UTC)
H0 = datetime_to_hour(datetime(2026, 2, 27, 22, tzinfo=UTC))  # across a month's partition
HOURS = st.integers(min_value=H0, max_value=H0 + 7)
ROWS = st.lists(st.tuples(st.integers(0, 2), HOURS, st.integers(0, 3)), max_size=20)


def stored(make_meter, before, incoming, hint):
    """Store `before`, then `incoming` with the hint, on three new meters (rolled back after):
    the result, and the rows and conflicts stored, with meters named by their index."""
    with transaction.atomic():
        ids = [make_meter().pk for _ in range(3)]
        index = {pk: i for i, pk in enumerate(ids)}
        store_many_readings([(ids[i], h, wh) for i, h, wh in before], received_at=RECEIVED)
        result = store_many_readings(
            [(ids[i], h, wh) for i, h, wh in incoming],
            received_at=RECEIVED,
            stored_through=None if hint is None else {ids[i]: mark for i, mark in hint.items()},
        )
        rows = {
            (index[m], hour, wh)
            for m, hour, wh in Reading.objects.filter(meter_id__in=ids).values_list(
                "meter_id", "hour", "wh"
            )
        }
        conflicts = sorted(
            (index[m], hour, was, got)
            for m, hour, was, got in ReadingConflict.objects.filter(meter_id__in=ids).values_list(
                "meter_id", "hour", "stored_wh", "received_wh"
            )
        )
        transaction.set_rollback(True)
    return result, rows, conflicts


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=ROWS,
    incoming=ROWS,
    hint=st.dictionaries(st.integers(0, 2), st.none() | HOURS | st.just(H0 - 1), max_size=3),
)
def test_any_hint_stores_what_the_checked_path_stores(make_meter, before, incoming, hint):
    with_hint = stored(make_meter, before, incoming, hint)
    assert with_hint == stored(make_meter, before, incoming, None)


def test_new_hours_after_the_mark_are_stored_and_counted(make_meter):
    meter = make_meter()
    rows = [(meter.pk, H0 + i, 100 + i) for i in range(5)]
    result = store_many_readings(rows, received_at=RECEIVED, stored_through={meter.pk: H0 - 1})
    assert (result.inserted, result.duplicates, result.conflicts) == (5, 0, 0)
    assert Reading.objects.filter(meter=meter).count() == 5


def test_a_wrong_mark_falls_back_to_the_checked_path(make_meter):
    """The mark says nothing after H0 is stored, but H0 + 2 is, with another value: the
    optimistic insert is undone whole and the conflict is set aside, not lost or doubled."""
    meter = make_meter()
    store_many_readings([(meter.pk, H0 + 2, 50)], received_at=RECEIVED, source=Source.UPLOAD)
    rows = [(meter.pk, H0 + i, 100 + i) for i in range(5)]
    result = store_many_readings(rows, received_at=RECEIVED, stored_through={meter.pk: H0})
    assert (result.inserted, result.duplicates, result.conflicts) == (4, 0, 1)
    assert dict(Reading.objects.filter(meter=meter).values_list("hour", "wh")) == {
        hour_to_datetime(H0): 100,
        hour_to_datetime(H0 + 1): 101,
        hour_to_datetime(H0 + 2): 50,
        hour_to_datetime(H0 + 3): 103,
        hour_to_datetime(H0 + 4): 104,
    }
    assert ReadingConflict.objects.get(meter=meter).received_wh == 102


def test_a_refused_value_is_refused_whatever_the_hint(make_meter):
    meter = make_meter()
    with pytest.raises(IntegrityError), transaction.atomic():
        store_many_readings(
            [(meter.pk, H0, -1)], received_at=RECEIVED, stored_through={meter.pk: None}
        )
    assert not Reading.objects.filter(meter=meter).exists()
