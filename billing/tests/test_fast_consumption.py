"""The fast consumption path (reads summed per run of the tariff calendar, estimates only for
the gaps) equals the reference computation (every hour in SQL) to the last digit, for any
readings: gaps short and long, a missing tail, no read before the window, registers that step
backwards, a swap's anchor registers, time-of-use bands across both DST changes, a price change
mid-window, several meters and tariffs in one batch."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.consumption import Window, reference_window_usage, window_usage
from billing.services import local_midnight
from billing.tests.test_billing_properties import BANDS
from readings.models import Reading

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

MONTHS = [date(2025, 3, 1), date(2025, 6, 1), date(2025, 10, 1)]  # DST in March and October
PROFILE_DAYS = 30  # readings before the window, for the long gaps' profiles


@st.composite
def meters(draw):
    return {
        "seed": draw(st.integers(0, 2**32)),
        "tariff": draw(st.sampled_from(["flat", "flat-change", "all-day", "weekday-wrap"])),
        "first_day": draw(st.integers(0, 20)),
        "days": draw(st.integers(1, 31)),
        "gaps": draw(st.lists(st.tuples(st.integers(-48, 800), st.integers(1, 60)), max_size=6)),
        "backwards": draw(st.lists(st.integers(-24, 800), max_size=3)),
        "history": draw(st.booleans()),  # reads before the window
        "until_end": draw(st.sampled_from(["past", "exactly", "short"])),
        "start_anchor": draw(st.none() | st.integers(0, 5_000)),
        "end_anchor": draw(st.none() | st.integers(10_000_000, 10_010_000)),
        "sparse": draw(st.booleans()),  # a meter that reports one hour in three
    }


def make_tariffs(make_tariff) -> dict:
    change = {"kind": "flat", "unit_price": "0.2", "valid_to": date(2025, 3, 15)}
    return {
        "flat": make_tariff({"kind": "flat", "unit_price": "0.2"}),
        "flat-change": make_tariff(
            change,
            {"kind": "flat", "unit_price": "0.3", "valid_from": date(2025, 3, 15)},
        ),
        "all-day": make_tariff({"kind": "tou", "bands": BANDS["all-day"]}),
        "weekday-wrap": make_tariff({"kind": "tou", "bands": BANDS["weekday-wrap"]}),
    }


def write(meter_id: int, spec: dict, start, end) -> None:
    rng = random.Random(spec["seed"])
    first = start - timedelta(days=PROFILE_DAYS if spec["history"] else 0)
    last = {"past": end + timedelta(hours=30), "exactly": end, "short": end - timedelta(hours=9)}
    hours = int((last[spec["until_end"]] - first).total_seconds() // 3600)
    offset = int((start - first).total_seconds() // 3600)
    missing = {
        offset + at + i for at, length in spec["gaps"] for i in range(length) if at + i >= -offset
    }
    backwards = {offset + at for at in spec["backwards"]}
    register, now, rows = rng.randint(0, 10**6), timezone.now(), []
    for i in range(hours + 1):
        register += -rng.randint(1, 3_000) if i in backwards else rng.randint(0, 2_500)
        register = max(register, 0)
        skipped = i in missing or (spec["sparse"] and i % 3)
        if not skipped and not (not spec["history"] and i < offset):
            hour = first + timedelta(hours=i)
            rows.append(Reading(meter_id=meter_id, hour=hour, wh=register, received_at=now))
    Reading.objects.bulk_create(rows)


def check(month: date, specs: list[dict], tariffs: dict) -> None:
    windows = []
    for wid, spec in enumerate(specs, start=1):
        start_day = month + timedelta(days=spec["first_day"])
        start = local_midnight(start_day)
        end = local_midnight(start_day + timedelta(days=spec["days"]))
        meter_id = 900_000 + wid
        write(meter_id, spec, start, end)
        windows.append(
            Window(
                wid,
                wid,
                meter_id,
                tariffs[spec["tariff"]].pk,
                start,
                end,
                spec["start_anchor"],
                spec["end_anchor"],
            )
        )
    fast, reference = window_usage(windows), reference_window_usage(windows)
    for wid, expected in reference.items():
        got = fast[wid]
        assert got.usage == expected.usage, f"window {wid}"
        assert (got.opening_wh, got.opening_estimated) == (
            expected.opening_wh,
            expected.opening_estimated,
        ), f"window {wid} opening"
        assert (got.closing_wh, got.closing_estimated) == (
            expected.closing_wh,
            expected.closing_estimated,
        ), f"window {wid} closing"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(month=st.sampled_from(MONTHS), specs=st.lists(meters(), min_size=1, max_size=4))
def test_fast_path_equals_the_reference(month, specs, make_tariff):
    with transaction.atomic():
        check(month, specs, make_tariffs(make_tariff))
        transaction.set_rollback(True)


def test_fast_path_equals_the_reference_on_a_plain_month(make_tariff):
    """A month of complete hourly reads and one long gap, both computations side by side."""
    tariffs = make_tariffs(make_tariff)
    spec = {
        "seed": 7,
        "tariff": "weekday-wrap",
        "first_day": 0,
        "days": 31,
        "gaps": [(100, 30)],
        "backwards": [300],
        "history": True,
        "until_end": "past",
        "start_anchor": None,
        "end_anchor": None,
        "sparse": False,
    }
    check(date(2025, 3, 1), [spec], tariffs)
