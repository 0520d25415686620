"""Customers proving the same meter at the same moment: each move-in is serialised on the
meter, so the meter ends with exactly one open occupancy and nobody gets a server error."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.customers.services import request_claim, verify_claim
from accounts.models import MeterOccupancy
from testing.customers import clear_customer_limits, display_code, heard_from, make_customer
from testing.processes import all_at_once

CLAIMANTS = 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_right_codes_for_one_meter_leave_one_open_occupancy(
    test_meter,
    post_sms,
    settings,
):
    clear_customer_limits()
    settings.CLAIM_CODES_PER_METER_PER_DAY = CLAIMANTS
    meter = test_meter()
    heard_from(meter, post_sms)
    number = meter.meter.number
    claimants = []
    for n in range(CLAIMANTS):
        user = make_customer(f"claimant{n}@example.com")
        request_claim(user, number, now=timezone.now())
        claimants.append((user, display_code(meter)))

    results = all_at_once(
        [lambda u=u, c=c: verify_claim(u, number, c, now=timezone.now()) for u, c in claimants]
    )

    assert all(result.ok for result in results)
    open_occupancies = MeterOccupancy.objects.filter(meter=meter.meter, end__isnull=True)
    assert open_occupancies.count() == 1
    assert MeterOccupancy.objects.filter(meter=meter.meter).count() == CLAIMANTS
