"""Customer sign-up, e-mail confirmation, meter claim, password, login and reset (flow 4, S10)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.customers.forms import PAUSED
from accounts.customers.tasks import register_customer
from accounts.models import ClaimStatus, MeterClaim, MeterOccupancy, User
from audit.models import AuditEvent, Outcome
from audit.services import record
from testing.audit_locks import (
    run_while_a_concurrent_request_holds_the_cap,
    run_with_the_audit_chain_held,
)
from testing.customers import (
    CUSTOMER_PASSWORD,
    clear_customer_limits,
    display_code,
    heard_from,
    links_in_mail,
    make_customer,
)
from testing.staff import STAFF_PASSWORD

UNKNOWN_METER = "ZZZZZZZZZZZZZZZZZZZZZZZZ9"
TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture(autouse=True)
def _fresh_limits():
    clear_customer_limits()
    yield
    clear_customer_limits()


def signup(client, email: str, number: str):
    return client.post("/accounts/signup/", {"email": email, "meter_number": number})


def normalised(response) -> bytes:
    return TOKEN_RE.sub("", response.content.decode()).encode()


@pytest.mark.django_db(transaction=True)
def test_full_signup_claim_password_login(client, test_meter, post_sms):
    meter = test_meter()
    heard_from(meter, post_sms)
    response = signup(client, "new@example.com", meter.meter.number.lower())
    assert response.status_code == 302 and response.url == "/accounts/confirm-email/"
    claim = MeterClaim.objects.get(user__email="new@example.com")
    assert claim.status == ClaimStatus.SENT and claim.meter == meter.meter
    code = display_code(meter)
    assert code and len(code) == 8
    assert code not in claim.code_hash  # only a keyed hash is stored

    (link,) = [x for x in links_in_mail("new@example.com") if "confirm-email" in x]
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + path).status_code == 200
    response = client.post("/" + path)
    assert response.status_code == 302 and response.url == "/accounts/claim/"

    response = client.post(
        "/accounts/claim/",
        {"action": "verify", "code-meter_number": meter.meter.number, "code-code": code},
    )
    assert response.status_code == 302 and response.url == "/accounts/password/set/"
    assert MeterOccupancy.objects.filter(user__email="new@example.com", end=None).count() == 1

    response = client.post(
        "/accounts/password/set/", {"password1": CUSTOMER_PASSWORD, "password2": CUSTOMER_PASSWORD}
    )
    assert response.status_code == 302
    assert User.objects.get(email="new@example.com").password.startswith("argon2")
    client.logout()

    response = client.post(
        "/accounts/login/", {"login": "new@example.com", "password": CUSTOMER_PASSWORD}
    )
    assert response.status_code == 302 and response.url == "/portal/"
    response = client.get("/portal/", follow=True)
    assert meter.meter.number.encode() in response.content


@pytest.mark.django_db(transaction=True)
def test_signup_does_not_reveal_email_or_meter(client, test_meter, post_sms):
    meter = test_meter()
    heard_from(meter, post_sms)
    make_customer("taken@example.com")
    emails = ["taken@example.com", "fresh1@example.com", "fresh2@example.com"]
    numbers = [meter.meter.number, meter.meter.number, UNKNOWN_METER]
    clients = [Client() for _ in emails]
    responses = [signup(c, e, n) for c, e, n in zip(clients, emails, numbers, strict=True)]
    assert {(r.status_code, r.get("Location")) for r in responses} == {
        (302, "/accounts/confirm-email/")
    }
    pages = [c.get(r.url) for c, r in zip(clients, responses, strict=True)]
    # The page each visitor then sees differs only by the address they typed.
    assert (
        len({normalised(p).replace(e.encode(), b"") for p, e in zip(pages, emails, strict=True)})
        == 1
    )
    # Every mailbox hears what happened, one message each.
    assert sorted(m.to[0] for m in mail.outbox) == [
        "fresh1@example.com",
        "fresh2@example.com",
        "taken@example.com",
    ]
    taken = next(m for m in mail.outbox if m.to == ["taken@example.com"])
    assert "already" in taken.body.lower()
    # The unknown meter got a claim like the others, but no code went anywhere.
    assert MeterClaim.objects.get(meter_number=UNKNOWN_METER).status == ClaimStatus.UNDELIVERABLE


@pytest.mark.django_db
def test_bad_meter_number_format_is_rejected_whatever_the_email(client):
    for email in ("x@example.com", "y@example.com"):
        response = signup(client, email, "12-34")
        assert response.status_code == 200
        assert b"25 letters and digits" in response.content
    assert not MeterClaim.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_signup_rate_limited_per_meter_number(client, settings):
    settings.CUSTOMER_LIMITS = {**settings.CUSTOMER_LIMITS, "signup_per_meter": (2, 3600)}
    statuses = [signup(client, f"p{i}@example.com", UNKNOWN_METER).status_code for i in range(3)]
    assert statuses == [302, 302, 200]
    assert AuditEvent.objects.filter(action="customer.signup_limited").exists()


def _over_the_cap(response) -> bool:
    return response.status_code == 200 and PAUSED in response.content.decode()


def _cap_alerted(action: str) -> bool:
    return AuditEvent.objects.filter(
        action="cap.exceeded", target=action, outcome=Outcome.ALERT
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_signups_fleet_wide_are_capped(client, settings, mailoutbox):
    """S12: a burst of sign-ups beyond the hourly cap pauses the form and alerts the admins."""
    settings.ADMINS = [("Security", "security@example.org")]
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "accounts.signup_requested": (2, 3600)}
    responses = [signup(client, f"s{i}@example.com", UNKNOWN_METER) for i in range(3)]
    assert [r.status_code for r in responses[:2]] == [302, 302]
    assert _over_the_cap(responses[2])
    assert _cap_alerted("accounts.signup_requested")
    assert AuditEvent.objects.filter(action="accounts.signup_requested").count() == 2
    assert [m.to for m in mailoutbox if "Anomaly cap" in m.subject] == [["security@example.org"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_signup_cap_counts_a_concurrent_signup(settings):
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "accounts.signup_requested": (2, 3600)}
    first = run_with_the_audit_chain_held(
        "accounts.signup_requested", lambda: signup(Client(), "first@example.com", UNKNOWN_METER)
    )
    assert first.status_code == 302
    response = run_while_a_concurrent_request_holds_the_cap(
        "accounts.signup_requested",
        lambda: signup(Client(), "late@example.com", UNKNOWN_METER),
        meanwhile=lambda: record("accounts.signup_requested", actor="anonymous"),
    )
    assert _over_the_cap(response)


def reset(client, email: str, number: str):
    return client.post("/accounts/password/reset/", {"email": email, "meter_number": number})


@pytest.mark.django_db(transaction=True)
def test_password_resets_fleet_wide_are_capped(client, settings, test_meter):
    settings.ANOMALY_CAPS = {
        **settings.ANOMALY_CAPS,
        "accounts.password_reset_requested": (1, 3600),
    }
    number = test_meter().meter.number
    first, second = reset(client, "a@example.com", number), reset(client, "b@example.com", number)
    assert first.status_code == 302 and _over_the_cap(second)
    assert _cap_alerted("accounts.password_reset_requested")
    assert [m.to for m in mail.outbox] == [["a@example.com"]]  # the paused request sent nothing


@pytest.mark.django_db(transaction=True)
def test_resets_refused_by_the_rate_limit_do_not_count_towards_the_cap(client, settings):
    """One client hammering the form is stopped by its own limit (429) and cannot use up the
    fleet-wide cap, which would pause resets for every customer."""
    settings.ANOMALY_CAPS = {
        **settings.ANOMALY_CAPS,
        "accounts.password_reset_requested": (3, 3600),
    }
    settings.CUSTOMER_LIMITS = {**settings.CUSTOMER_LIMITS, "reset_per_meter": (10, 3600)}
    statuses = [reset(client, "same@example.com", UNKNOWN_METER).status_code for _ in range(5)]
    assert statuses == [302, 302, 302, 429, 429]  # allauth's 3/h per e-mail
    assert AuditEvent.objects.filter(action="accounts.password_reset_requested").count() == 3
    assert not _cap_alerted("accounts.password_reset_requested")
    assert _over_the_cap(reset(client, "other@example.com", UNKNOWN_METER))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_reset_cap_counts_a_concurrent_reset(settings):
    settings.ANOMALY_CAPS = {
        **settings.ANOMALY_CAPS,
        "accounts.password_reset_requested": (2, 3600),
    }
    first = run_with_the_audit_chain_held(
        "accounts.password_reset_requested",
        lambda: reset(Client(), "first@example.com", UNKNOWN_METER),
    )
    assert first.status_code == 302
    mail.outbox.clear()
    response = run_while_a_concurrent_request_holds_the_cap(
        "accounts.password_reset_requested",
        lambda: reset(Client(), "late@example.com", UNKNOWN_METER),
        meanwhile=lambda: record("accounts.password_reset_requested", actor="anonymous"),
    )
    assert _over_the_cap(response)
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_reset_needs_a_meter_of_the_account_and_never_tells(client, test_meter):
    meter = test_meter()
    make_customer("owner@example.com", meter.meter)
    make_customer("other@example.com")
    cases = [
        ("owner@example.com", meter.meter.number),  # right pair: a link
        ("other@example.com", meter.meter.number),  # account without that meter: no link
        ("nobody@example.com", meter.meter.number),  # no account: "unknown account" mail
    ]
    responses = [reset(client, e, n) for e, n in cases]
    assert {(r.status_code, r.get("Location")) for r in responses} == {
        (302, "/accounts/password/reset/done/")
    }
    by_to = {m.to[0]: m for m in mail.outbox}
    assert set(by_to) == {"owner@example.com", "other@example.com", "nobody@example.com"}
    assert "/accounts/password/reset/key/" in by_to["owner@example.com"].body
    assert "/accounts/password/reset/key/" not in by_to["other@example.com"].body
    assert "not one of the meters" in by_to["other@example.com"].body
    assert "/accounts/password/reset/key/" not in by_to["nobody@example.com"].body


@pytest.mark.django_db(transaction=True)
def test_login_lockout_after_failures_is_audited(client, settings):
    make_customer("victim@example.com")
    for _ in range(5):
        response = client.post(
            "/accounts/login/", {"login": "victim@example.com", "password": "wrong password 1"}
        )
        assert response.status_code == 200
    assert AuditEvent.objects.filter(
        action="customer.password_guessing", outcome=Outcome.ALERT
    ).exists()
    # Locked: even the right password is refused now, with the same page for unknown addresses.
    locked = client.post(
        "/accounts/login/", {"login": "victim@example.com", "password": CUSTOMER_PASSWORD}
    )
    assert locked.status_code == 200 and b"Too many failed login attempts" in locked.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="customer.login_locked").exists()


@pytest.mark.django_db
def test_login_failure_same_for_unknown_and_known_address(client):
    make_customer("known@example.com")
    a = client.post("/accounts/login/", {"login": "known@example.com", "password": "nope nope 1"})
    b = client.post("/accounts/login/", {"login": "unknown@example.com", "password": "nope nope 1"})
    assert a.status_code == b.status_code == 200
    strip = lambda r: normalised(r).replace(b"known@example.com", b"").replace(b"un", b"")  # noqa: E731
    assert strip(a) == strip(b)


@pytest.mark.django_db
def test_staff_cannot_use_the_customer_login_and_it_does_not_tell(client, make_staff):
    """A staff e-mail with its right password is answered as a wrong password: the customer
    login confirms neither that the account is staff nor that the password is right."""
    from allauth.account.models import EmailAddress

    user, _ = make_staff("support@example.com", roles=["Support"])
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    right = client.post("/accounts/login/", {"login": user.email, "password": STAFF_PASSWORD})
    wrong = client.post("/accounts/login/", {"login": user.email, "password": "nope nope 1"})
    assert right.status_code == wrong.status_code == 200
    assert normalised(right) == normalised(wrong)
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login.failure", target=user.email).count() == 2


@pytest.mark.django_db(transaction=True)
def test_behind_the_proxy_one_clients_failures_do_not_lock_out_another(client, settings):
    """allauth's per-address limits see the client behind nginx, not nginx itself."""
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    make_customer("bystander@example.com")
    for i in range(4):
        client.post(
            "/accounts/login/",
            {"login": f"guess{i}@example.com", "password": "wrong password 1"},
            HTTP_X_FORWARDED_FOR="198.51.100.66",
            REMOTE_ADDR="127.0.0.1",
        )
    other = client.post(
        "/accounts/login/",
        {"login": "bystander@example.com", "password": CUSTOMER_PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.7",
        REMOTE_ADDR="127.0.0.1",
    )
    assert other.status_code == 302  # signed in: the attacker's address is not everyone's


@pytest.mark.django_db(transaction=True)
def test_a_client_that_is_not_the_proxy_cannot_name_another_address(client, settings):
    """Only our proxy may set the client address: a direct peer's X-Forwarded-For is ignored
    by the rate limits and by the audit log."""
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    make_customer("victim@example.com")
    for i in range(4):
        client.post(
            "/accounts/login/",
            {"login": f"guess{i}@example.com", "password": "wrong password 1"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}",
            REMOTE_ADDR="198.51.100.66",
        )
    again = client.post(
        "/accounts/login/",
        {"login": "victim@example.com", "password": CUSTOMER_PASSWORD},
        HTTP_X_FORWARDED_FOR="192.0.2.99",
        REMOTE_ADDR="198.51.100.66",
    )
    assert again.status_code != 302 and "_auth_user_id" not in client.session
    failures = AuditEvent.objects.filter(action="login.failure")
    assert failures.exists()
    assert set(failures.values_list("source_ip", flat=True)) == {"198.51.100.66"}


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_signup_for_the_same_address_gets_the_duplicate_answer():
    """Two sign-ups for one new address: the one that commits second is told the address has
    an account (by e-mail, as any duplicate), not a crash."""
    import threading
    import time as clock

    from django.db import connection, transaction

    inserted, release, outcome = threading.Event(), threading.Event(), {}

    def first_signup():
        with transaction.atomic():
            User.objects.create_user("race@example.com", None)
            inserted.set()
            release.wait(10)
        connection.close()

    def second_signup():
        try:
            outcome["second"] = register_customer(
                email="race@example.com", meter_number=UNKNOWN_METER
            )
        finally:
            connection.close()

    first = threading.Thread(target=first_signup)
    first.start()
    assert inserted.wait(10)
    second = threading.Thread(target=second_signup)
    second.start()
    clock.sleep(0.5)  # the second now waits on the unique index for the first to commit
    release.set()
    first.join(10)
    second.join(10)
    assert outcome["second"] == "exists"
    assert User.objects.filter(email="race@example.com").count() == 1
    assert [m.subject for m in mail.outbox if "race@example.com" in m.to] == [
        "[Meter portal] Account Already Exists"
    ]
