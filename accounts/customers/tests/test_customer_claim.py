"""Proof of presence: the code on the meter's display, its limits, and move-in/move-out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.conf import setting
from accounts.customers.jobs import send_claim_code
from accounts.customers.services import request_claim, verify_claim
from accounts.models import AccountDeletionRequest, ClaimStatus, MeterClaim, MeterOccupancy
from accounts.roles import SECURITY_ADMIN, SUPPORT
from audit.models import AuditEvent, Outcome
from audit.services import record
from testing.audit_locks import (
    run_while_a_concurrent_request_holds_the_cap,
    run_with_the_audit_chain_held,
)
from testing.customers import clear_customer_limits, display_code, heard_from, make_customer

UNKNOWN_METER = "ZZZZZZZZZZZZZZZZZZZZZZZZ9"


@pytest.fixture(autouse=True)
def _fresh_limits():
    clear_customer_limits()
    yield
    clear_customer_limits()


@pytest.fixture
def reachable(test_meter, post_sms):
    meter = test_meter()
    heard_from(meter, post_sms)
    return meter


def claim_with_code(user, meter, *, now=None):
    now = now or timezone.now()
    request_claim(user, meter.meter.number, now=now)
    return display_code(meter)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


@pytest.mark.django_db(transaction=True)
def test_right_code_links_the_meter_wrong_code_does_not(reachable):
    user = make_customer("a@example.com")
    code = claim_with_code(user, reachable)
    assert not verify_claim(user, reachable.meter.number, wrong(code), now=timezone.now()).ok
    assert not MeterOccupancy.objects.exists()
    result = verify_claim(user, reachable.meter.number, code, now=timezone.now())
    assert result.ok and result.occupancy.user == user and result.occupancy.end is None
    # A used code cannot be used again.
    assert not verify_claim(user, reachable.meter.number, code, now=timezone.now()).ok
    assert AuditEvent.objects.filter(action="customer.meter_claimed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_sticker_number_and_someone_elses_code_do_not_open_a_meter(reachable):
    owner, intruder = make_customer("o@example.com"), make_customer("i@example.com")
    code = claim_with_code(owner, reachable)
    request_claim(intruder, reachable.meter.number, now=timezone.now())
    assert not verify_claim(intruder, reachable.meter.number, code, now=timezone.now()).ok


@pytest.mark.django_db(transaction=True)
def test_code_expires(reachable, settings):
    user = make_customer("a@example.com")
    code = claim_with_code(user, reachable)
    later = timezone.now() + timedelta(minutes=settings.CLAIM_CODE_TTL_MINUTES + 1)
    assert not verify_claim(user, reachable.meter.number, code, now=later).ok


@pytest.mark.django_db(transaction=True)
def test_few_attempts_per_code(reachable, settings):
    user = make_customer("a@example.com")
    code = claim_with_code(user, reachable)
    for _ in range(setting("CLAIM_CODE_MAX_ATTEMPTS")):
        assert not verify_claim(user, reachable.meter.number, wrong(code), now=timezone.now()).ok
    assert MeterClaim.objects.get(user=user).status == ClaimStatus.FAILED
    assert not verify_claim(user, reachable.meter.number, code, now=timezone.now()).ok


@pytest.mark.django_db(transaction=True)
def test_guessing_locks_claims_and_alerts(reachable, settings):
    settings.CUSTOMER_LIMITS = {**settings.CUSTOMER_LIMITS, "claim_failures_per_user": (3, 86400)}
    settings.ADMINS = [("Security", "security@example.com")]
    user = make_customer("a@example.com")
    code = claim_with_code(user, reachable)
    results = [
        verify_claim(user, reachable.meter.number, wrong(code), now=timezone.now())
        for _ in range(3)
    ]
    assert [r.locked for r in results] == [False, False, True]
    assert AuditEvent.objects.filter(
        action="customer.claim_lockout", outcome=Outcome.ALERT
    ).exists()
    assert any("guessed" in m.subject for m in mail.outbox)
    # Locked out: even the right code is refused now.
    assert verify_claim(user, reachable.meter.number, code, now=timezone.now()).locked


@pytest.mark.django_db(transaction=True)
def test_unknown_meter_claim_looks_the_same_and_never_succeeds(client):
    user = make_customer("a@example.com")
    client.force_login(user)
    response = client.post(
        "/accounts/claim/", {"action": "request", "request-meter_number": UNKNOWN_METER}
    )
    assert response.status_code == 302
    messages = [str(m) for m in client.get("/accounts/claim/").context["messages"]]
    assert any("If ZZZZ" in m for m in messages)
    claim = MeterClaim.objects.get(user=user)
    assert claim.status == ClaimStatus.UNDELIVERABLE and claim.code_hash == ""
    response = client.post(
        "/accounts/claim/",
        {"action": "verify", "code-meter_number": UNKNOWN_METER, "code-code": "12345678"},
    )
    assert response.status_code == 200 and b"not right or has expired" in response.content


@pytest.mark.django_db(transaction=True)
def test_claim_requests_are_rate_limited_per_account(client, settings):
    settings.CUSTOMER_LIMITS = {**settings.CUSTOMER_LIMITS, "claim_per_user": (2, 86400)}
    client.force_login(make_customer("a@example.com"))
    statuses = [
        client.post(
            "/accounts/claim/", {"action": "request", "request-meter_number": UNKNOWN_METER}
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [302, 302, 200]


@pytest.mark.django_db(transaction=True)
def test_move_in_ends_the_previous_occupants_access(reachable):
    old, new = make_customer("old@example.com"), make_customer("new@example.com")
    t0 = timezone.now()
    code = claim_with_code(old, reachable, now=t0)
    first = verify_claim(old, reachable.meter.number, code, now=t0).occupancy

    t1 = t0 + timedelta(minutes=5)
    code = claim_with_code(new, reachable, now=t1)
    second = verify_claim(new, reachable.meter.number, code, now=t1).occupancy

    first.refresh_from_db()
    assert first.end == t1 and second.start == t1 and second.end is None
    assert MeterOccupancy.objects.filter(meter=reachable.meter, end__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="customer.moved_out").exists()
    assert any(m.to == ["old@example.com"] and "claimed" in m.subject for m in mail.outbox)


def three_claims_for(meter) -> list[str]:
    """Three customers claim one meter; the claims' statuses in order."""
    for i in range(3):
        request_claim(
            make_customer(f"claimant{i}@example.com"), meter.meter.number, now=timezone.now()
        )
    return list(MeterClaim.objects.order_by("pk").values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
def test_codes_per_meter_are_limited_so_its_acks_keep_their_sms(reachable, settings):
    """Strangers asking for codes for one sticker number cannot use up that meter's SMS."""
    settings.CLAIM_CODES_PER_METER_PER_DAY = 2
    assert three_claims_for(reachable) == [
        ClaimStatus.SENT,
        ClaimStatus.SENT,
        ClaimStatus.UNDELIVERABLE,
    ]
    assert AuditEvent.objects.filter(
        action="customer.claim_code_not_sent", details__reason="daily codes for this meter used up"
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_claim_codes_fleet_wide_are_capped(reachable, settings):
    """S12: codes are SMS to meters; beyond the fleet-wide hourly cap none is sent and the
    operators are alerted."""
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "accounts.claim_code_sent": (2, 3600)}
    assert three_claims_for(reachable) == [
        ClaimStatus.SENT,
        ClaimStatus.SENT,
        ClaimStatus.UNDELIVERABLE,
    ]
    assert AuditEvent.objects.filter(
        action="cap.exceeded", target="accounts.claim_code_sent", outcome=Outcome.ALERT
    ).exists()


def waiting_claim(meter, who: str, now) -> MeterClaim:
    """A claim whose code is not sent yet (as `request_claim` leaves it for its task)."""
    return MeterClaim.objects.create(
        user=make_customer(f"{who}@example.com"),
        meter_number=meter.meter.number,
        created_at=now,
        expires_at=now + timedelta(minutes=10),
    )


def send_while_another_code_is_sent(claim: MeterClaim, now) -> str:
    """`send_claim_code` while a concurrent send for the same meter holds the cap's lock and
    commits its record."""
    return run_while_a_concurrent_request_holds_the_cap(
        "accounts.claim_code_sent",
        lambda: send_claim_code(claim.pk, now=now),
        meanwhile=lambda: record(
            "accounts.claim_code_sent", actor="accounts", target=f"meter:{claim.meter_number}"
        ),
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_claim_code_cap_counts_a_code_sent_concurrently(reachable, settings):
    settings.ANOMALY_CAPS = {**settings.ANOMALY_CAPS, "accounts.claim_code_sent": (2, 3600)}
    now = timezone.now()
    first, claim = waiting_claim(reachable, "first", now), waiting_claim(reachable, "late", now)
    sent = run_with_the_audit_chain_held(
        "accounts.claim_code_sent", lambda: send_claim_code(first.pk, now=now)
    )
    assert sent == "sent"
    assert send_while_another_code_is_sent(claim, now) == "capped"
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.UNDELIVERABLE and claim.code_hash == ""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_per_meter_code_limit_counts_a_code_sent_concurrently(reachable, settings):
    """The per-meter count is taken under the fleet cap's lock too."""
    settings.CLAIM_CODES_PER_METER_PER_DAY = 1
    now = timezone.now()
    claim = waiting_claim(reachable, "late", now)
    assert send_while_another_code_is_sent(claim, now) == "meter limit"


@pytest.mark.django_db
def test_a_security_admin_closes_an_account_on_request(client, make_staff, verified_client):
    customer = make_customer("leaving@example.com")
    deletion = AccountDeletionRequest.objects.create(
        user=customer, email=customer.email, requested_at=timezone.now()
    )
    support, device = make_staff("sup@example.org", roles=[SUPPORT])
    verified_client(support, device)
    page = client.get("/admin/accounts/accountdeletionrequest/")
    assert page.status_code == 200 and page.context["action_form"] is None  # view only
    admin_user, device = make_staff("sec@example.org", roles=[SECURITY_ADMIN])
    verified_client(admin_user, device)
    response = client.post(
        "/admin/accounts/accountdeletionrequest/",
        {"action": "process", "_selected_action": [deletion.pk]},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    deletion.refresh_from_db()
    assert not customer.is_active and deletion.processed_by == admin_user.email
    assert AuditEvent.objects.filter(action="customer.deletion_processed").exists()
