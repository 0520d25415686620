"""Simultaneous sign-ups with one new e-mail address: one account, and every other request
answered like an ordinary duplicate sign-up, never a server error."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.customers.forms import TOO_MANY
from accounts.models import MeterClaim, User
from audit.models import AuditEvent
from testing.customers import clear_customer_limits
from testing.processes import all_at_once

UNKNOWN_METER = "ZZZZZZZZZZZZZZZZZZZZZZZZ9"


@pytest.fixture(autouse=True)
def _fresh_limits():
    clear_customer_limits()
    yield
    clear_customer_limits()


def _signup(email: str):
    def post():
        client = Client(raise_request_exception=False)
        return client.post("/accounts/signup/", {"email": email, "meter_number": UNKNOWN_METER})

    return post


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_signups_with_one_new_email_answer_like_a_duplicate(settings):
    # Our limits raised so that the requests reach the account's creation: the race itself.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": "100/m/ip"}
    settings.CUSTOMER_LIMITS = {
        **settings.CUSTOMER_LIMITS,
        "signup_per_email": (100, 3600),
        "signup_per_meter": (100, 3600),
    }
    responses = all_at_once([_signup("race@example.com") for _ in range(20)])
    duplicate = _signup("race@example.com")()  # an ordinary duplicate, afterwards

    # allauth answers a request that finds its rate-limit bucket busy with 429.
    assert {r.status_code for r in responses} <= {302, 429}
    assert {r["Location"] for r in responses if r.status_code == 302} == {duplicate["Location"]}
    passed = AuditEvent.objects.filter(action="accounts.signup_requested").count() - 1
    assert passed >= 2  # more than one request found the address free and raced to create it
    assert User.objects.filter(email__iexact="race@example.com").count() == 1
    # The account came with its claim; no request left half an account behind.
    assert MeterClaim.objects.filter(user__email="race@example.com").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_signups_under_the_default_limits_never_fail():
    responses = all_at_once([_signup("limits@example.com") for _ in range(20)])
    assert {r.status_code for r in responses} <= {200, 302, 429}
    # 200: the form again, with the per-address limit's message.
    assert all(TOO_MANY in r.content.decode() for r in responses if r.status_code == 200)
    assert User.objects.filter(email__iexact="limits@example.com").count() == 1
