"""The published OpenAPI schema is what the API does: Schemathesis generates requests from it
(valid and invalid) against the live API, with every check on (status codes, content types,
headers and bodies as documented, invalid input refused, valid input accepted, no 5xx)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from accounts.customers.portal.tokens import create_personal_token
from accounts.customers.tests.test_api_access import hours_of_data
from testing.customers import make_customer

schemathesis.checks.load_all_checks()
ALL_CHECKS = schemathesis.checks.CHECKS.get_all()
MAX_EXAMPLES = 40  # per operation and mode: a few seconds against the live server


@pytest.fixture
def api(live_server, make_meter, transactional_db, settings):
    """The live API and a customer's token for a meter with three days of readings."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "100000/min"},
    }
    now = timezone.now()
    meter = make_meter()
    hours_of_data(meter, now - timedelta(days=3), 72)
    owner = make_customer("schema@example.com", meter, start=now - timedelta(days=4))
    _, secret = create_personal_token(owner, name="schemathesis", valid_days=1, now=now)
    loaded = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    return loaded, f"Bearer {secret}", meter.number


def _a_valid_window(case):
    """Positive cases also keep the rules across parameters that OpenAPI cannot state (both
    dates or neither, their order, range and span; in the operation's description): a
    generated start becomes a one-day window in range. The 400s for breaking them are
    tested in test_portal_usage."""
    query = case.query or {}
    if "start" in query or "end" in query:
        given_start = query.get("start") or query.get("end")
        year = min(max(int(given_start[:4]), 2000), date.today().year)
        first = date(year, int(given_start[5:7]), min(int(given_start[8:10]), 28))
        case.query = {**query, "start": first.isoformat(), "end": str(first + timedelta(1))}
    return case


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("meter", ["any number", "the customer's meter"])
def test_the_api_does_what_its_schema_says(api, mode, meter):
    schema, token, number = api
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode == GenerationMode.NEGATIVE and not (operation.query or operation.path_parameters):
            continue  # nothing but our own token to get wrong
        fixed = {}
        if meter == "the customer's meter" and "{number}" in operation.path:
            fixed = {"path_parameters": {"number": number}}
        auth = {"Authorization": token}  # ours, not generated: the checks know it is valid
        strategy = operation.as_strategy(mode, headers=auth, **fixed)
        if mode == GenerationMode.POSITIVE:
            strategy = strategy.map(_a_valid_window)

        @given(case=strategy, auth=st.just(auth))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case, auth):
            case.call_and_validate(headers=auth, checks=ALL_CHECKS)

        check()
