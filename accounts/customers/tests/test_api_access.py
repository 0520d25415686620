"""Who may see what: every customer URL and API endpoint against owner, another customer,
anonymous, consented and unconsented third parties; consent grant, expiry and revocation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.customers.portal.tokens import create_personal_token, grant_consent, revoke
from accounts.models import MeterOccupancy
from audit.models import AuditEvent
from readings.models import ApiToken
from readings.selectors import Access
from readings.services import datetime_to_hour, store_readings
from testing.customers import make_customer

pytestmark = pytest.mark.postgres


def hours_of_data(meter, start: datetime, hours: int) -> None:
    h0 = datetime_to_hour(start)
    store_readings(
        meter.pk, [(h0 + i, 1000 + 100 * i) for i in range(hours + 1)], received_at=start
    )


@pytest.fixture
def world(make_meter):
    now = timezone.now()
    start = now - timedelta(days=30)
    mine, theirs = make_meter(), make_meter()
    for meter in (mine, theirs):
        hours_of_data(meter, start, 24 * 3)
    owner = make_customer("owner@example.com", mine, start=start - timedelta(days=1))
    other = make_customer("other@example.com", theirs, start=start - timedelta(days=1))
    _, consented = grant_consent(
        owner,
        Access(mine, start - timedelta(days=1), None),
        third_party="Adviser Ltd",
        months=13,
        valid_days=30,
        now=now,
    )
    _, unconsented = grant_consent(
        other,
        Access(theirs, start - timedelta(days=1), None),
        third_party="Other Co",
        months=13,
        valid_days=30,
        now=now,
    )
    _, personal = create_personal_token(owner, name="my script", valid_days=30, now=now)
    return {
        "mine": mine,
        "theirs": theirs,
        "owner": owner,
        "other": other,
        "consented": consented,
        "unconsented": unconsented,
        "personal": personal,
    }


def as_principal(world, who: str) -> Client:
    client = Client()
    if who in ("owner", "other"):
        client.force_login(world[who])
    elif who in ("consented", "unconsented", "personal"):
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world[who]}"
    return client


PRINCIPALS = ["owner", "other", "anonymous", "consented", "unconsented", "personal"]
N = "{n}"

# URL → expected status per principal. Portal pages take the customer's session only.
MATRIX = {
    f"/portal/meters/{N}/": [200, 404, 302, 302, 302, 302],
    f"/portal/meters/{N}/usage.json?resolution=day": [200, 404, 302, 302, 302, 302],
    f"/portal/meters/{N}/readings.csv": [200, 404, 302, 302, 302, 302],
    "/portal/access/": [200, 200, 302, 302, 302, 302],
    "/accounts/claim/": [200, 200, 302, 302, 302, 302],
    "/accounts/settings/": [200, 200, 302, 302, 302, 302],
    "/accounts/delete/": [200, 200, 302, 302, 302, 302],
    "/api/v1/meters/": [200, 200, 401, 200, 200, 200],
    f"/api/v1/meters/{N}/usage/?resolution=day": [200, 404, 401, 200, 404, 200],
    f"/staff/meters/{N}/usage/": [302, 302, 302, 302, 302, 302],
}


@pytest.mark.django_db
@pytest.mark.parametrize("url", list(MATRIX))
def test_access_matrix(world, url):
    got = []
    for who in PRINCIPALS:
        response = as_principal(world, who).get(url.replace(N, world["mine"].number))
        got.append(response.status_code)
        if response.status_code == 200 and who in ("owner", "consented", "personal"):
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert world["theirs"].number.encode() not in body
    assert dict(zip(PRINCIPALS, got, strict=True)) == dict(
        zip(PRINCIPALS, MATRIX[url], strict=True)
    )


@pytest.mark.django_db
def test_api_meter_lists_show_only_what_each_may_read(world):
    def numbers(who):
        return {m["number"] for m in as_principal(world, who).get("/api/v1/meters/").json()}

    assert numbers("owner") == numbers("personal") == numbers("consented") == {world["mine"].number}
    assert numbers("other") == numbers("unconsented") == {world["theirs"].number}


@pytest.mark.django_db
def test_unknown_meter_and_foreign_meter_are_the_same_404(world):
    client = as_principal(world, "owner")
    unknown = client.get("/portal/meters/ZZZZZZZZZZZZZZZZZZZZZZZZ9/")
    foreign = client.get(f"/portal/meters/{world['theirs'].number}/")
    assert unknown.status_code == foreign.status_code == 404
    assert unknown.content.replace(b"ZZZZZZZZZZZZZZZZZZZZZZZZ9", b"") == foreign.content.replace(
        world["theirs"].number.encode(), b""
    )


@pytest.mark.django_db
def test_revoking_another_customers_token_is_a_404(world):
    token = ApiToken.objects.get(name="Other Co")
    response = as_principal(world, "owner").post(f"/portal/access/{token.pk}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.django_db
def test_staff_view_needs_the_permission_and_is_audited(world, make_staff, verified_client):
    url = f"/staff/meters/{world['mine'].number}/usage/"
    engineer, device = make_staff("fe@example.com", roles=["Field engineer"])
    assert verified_client(engineer, device).get(url).status_code == 403
    user, device = make_staff("support@example.com", roles=["Support"])  # readings.view_reading
    client = verified_client(user, device)
    assert client.get(url).status_code == 200
    assert AuditEvent.objects.filter(
        action="staff.customer_data_viewed", target=f"meter:{world['mine'].number}"
    ).exists()


# ---- consent ----


@pytest.mark.django_db
def test_consent_granted_in_the_portal_works_until_revoked(make_meter, client):
    meter = make_meter()
    hours_of_data(meter, timezone.now() - timedelta(days=2), 24)
    user = make_customer("c@example.com", meter, start=timezone.now() - timedelta(days=3))
    client.force_login(user)
    response = client.post(
        "/portal/access/",
        {
            "action": "consent",
            "meter": meter.number,
            "third_party": "Switch Ltd",
            "months": 13,
            "valid_days": 30,
        },
    )
    assert response.status_code == 200
    secret = re.search(rb'id="new-secret">([^<]+)<', response.content).group(1).decode()
    token = ApiToken.objects.get(name="Switch Ltd")
    assert secret not in token.token_hash and token.token_hash != secret  # hashed at rest

    third = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = f"/api/v1/meters/{meter.number}/usage/?resolution=hour"
    assert third.get(url).status_code == 200
    assert AuditEvent.objects.filter(action="api.consent_read").exists()

    client.post(f"/portal/access/{token.pk}/revoke/")
    assert third.get(url).status_code == 401
    assert AuditEvent.objects.filter(action="customer.api_token_revoked").exists()


@pytest.mark.django_db
def test_consent_limits_months_and_expires(make_meter):
    now = timezone.now()
    meter = make_meter()
    user = make_customer("c@example.com", meter, start=now - timedelta(days=800))
    access = Access(meter, now - timedelta(days=800), None)
    with pytest.raises(ValueError):
        grant_consent(user, access, third_party="Greedy", months=14, valid_days=30, now=now)
    token, secret = grant_consent(
        user, access, third_party="Fair", months=13, valid_days=1, now=now
    )
    assert now - token.data_from < timedelta(days=13 * 31 + 1)
    assert now - token.data_from > timedelta(days=13 * 28)

    # Data older than the consent window is not served.
    old = datetime(now.year - 2, 1, 1, tzinfo=UTC)
    hours_of_data(meter, old, 48)
    third = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    day = old.date().isoformat()
    end = (old + timedelta(days=3)).date().isoformat()
    body = third.get(
        f"/api/v1/meters/{meter.number}/usage/?resolution=day&start={day}&end={end}"
    ).json()
    assert all(b["kwh"] is None for b in body["buckets"])

    ApiToken.objects.filter(pk=token.pk).update(expires_at=now - timedelta(seconds=1))
    assert third.get("/api/v1/meters/").status_code == 401


@pytest.mark.django_db
def test_consent_ends_with_the_granting_customers_occupancy(world):
    third = as_principal(world, "consented")
    moved_out = timezone.now() - timedelta(days=29)
    MeterOccupancy.objects.filter(user=world["owner"]).update(end=moved_out)
    # The third party keeps the granting customer's period only, nothing after the move-out.
    (meter,) = third.get("/api/v1/meters/").json()
    assert datetime.fromisoformat(meter["data_until"].replace("Z", "+00:00")) == moved_out
    body = third.get(f"/api/v1/meters/{world['mine'].number}/usage/?resolution=day").json()
    late = [b for b in body["buckets"] if datetime.fromisoformat(b["start"]) >= moved_out]
    assert late and all(b["kwh"] is None for b in late)


@pytest.mark.django_db
def test_personal_token_revocation_and_garbage_tokens(world):
    client = as_principal(world, "personal")
    assert client.get("/api/v1/meters/").status_code == 200
    revoke(ApiToken.objects.get(name="my script"), by=world["owner"], now=timezone.now())
    assert client.get("/api/v1/meters/").status_code == 401
    for bad in ("Bearer", "Bearer x y", "Bearer mpt_nope_nope", "Bearer ' OR 1=1 --"):
        assert Client(HTTP_AUTHORIZATION=bad).get("/api/v1/meters/").status_code == 401


@pytest.mark.django_db
def test_openapi_schema_is_served_and_lists_the_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/api/v1/meters/{number}/usage/" in body
    assert '"scheme": "bearer"' in body
