"""Every staff URL needs a password *and* an authenticator code (S11)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.roles import SECURITY_ADMIN, SUPPORT
from audit.models import AuditEvent
from testing.staff import STAFF_PASSWORD, totp_now


def _staff_urls() -> list[str]:
    """Every admin and staff URL pattern, with sample arguments filled in."""
    found: list[str] = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns)
    staff = []
    for pattern in found:
        if not pattern.startswith(("admin/", "staff/")):
            continue
        path = (
            pattern.replace("^", "")
            .replace("$", "")
            .replace("\\Z", "")
            .replace("<path:object_id>", "1")
            .replace("<int:content_type_id>", "1")
            .replace("<path:object_id>", "1")
            .replace("<id>", "1")
        )
        for token in ("(?P<app_label>auth|accounts|audit|otp_totp)", "<str:app_label>"):
            path = path.replace(token, "accounts")
        path = path.replace("(?P<url>.*)", "x").replace("<path:url>", "x")
        path = path.replace("<int:user_id>", "1").replace("<uidb64>", "x").replace("<token>", "x")
        staff.append("/" + path)
    return sorted(set(staff))


STAFF_URLS = _staff_urls()
EXEMPT = {"/admin/login/", "/admin/logout/"}


def test_the_staff_url_list_is_complete():
    assert "/admin/" in STAFF_URLS
    assert "/staff/" in STAFF_URLS
    assert "/admin/accounts/user/" in STAFF_URLS
    assert "/admin/audit/auditevent/" in STAFF_URLS
    assert len(STAFF_URLS) > 30


@pytest.mark.django_db
@pytest.mark.parametrize("url", sorted(set(STAFF_URLS) - EXEMPT))
def test_password_alone_never_opens_a_staff_url(client, make_staff, url):
    user, _ = make_staff("root@example.org", superuser=True)
    client.force_login(user)  # a session with the password factor only
    response = client.get(url)
    assert response.status_code == 302, url
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/staff/", "/admin/", "/admin/accounts/user/"])
def test_anonymous_is_sent_to_the_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_login_with_password_and_code_opens_staff_pages(client, make_staff, verified_client):
    user, device = make_staff("sec@example.org", roles=[SECURITY_ADMIN])
    verified_client(user, device)
    assert client.get("/staff/").status_code == 200
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/audit/auditevent/").status_code == 200
    event = AuditEvent.objects.filter(action="login.success", actor=user).get()
    assert event.details == {"second_factor": "TOTPDevice"}


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["no code", "wrong code", "stale code", "wrong password"])
def test_login_without_a_valid_second_factor_fails_alike(client, make_staff, case):
    user, device = make_staff("sup@example.org", roles=[SUPPORT])
    code = {
        "no code": "",
        "wrong code": f"{(int(totp_now(device)) + 1) % 1_000_000:06d}",
        "stale code": totp_now(device, offset_steps=-10),
        "wrong password": totp_now(device),
    }[case]
    password = "not-the-password-1" if case == "wrong password" else STAFF_PASSWORD
    response = client.post(
        "/admin/login/", {"username": user.email, "password": password, "otp_token": code}
    )
    assert response.status_code == 200
    if case != "no code":
        # One message whichever factor failed: the form does not confirm a guessed password.
        assert "correct e-mail address, password and authenticator code" in response.text
    assert client.get("/staff/").status_code == 302
    failure = "login.failure" if case == "wrong password" else "login.otp_failure"
    if case != "no code":
        assert AuditEvent.objects.filter(action=failure, target=user.email).exists()
    assert not AuditEvent.objects.filter(action="login.success").exists()


@pytest.mark.django_db
def test_a_customer_cannot_use_the_staff_login(client, django_user_model):
    customer = django_user_model.objects.create_user("cust@example.org", "a-Long-password-77")
    response = client.post(
        "/admin/login/",
        {"username": customer.email, "password": "a-Long-password-77", "otp_token": "123456"},
    )
    assert response.status_code == 200
    assert client.get("/staff/").status_code == 302


@pytest.mark.django_db
def test_a_used_code_cannot_be_replayed(client, make_staff, verified_client):
    user, device = make_staff("sup2@example.org", roles=[SUPPORT])
    code = totp_now(device)
    verified_client(user, device)  # uses the current code
    client.post("/admin/logout/")
    response = client.post(
        "/admin/login/", {"username": user.email, "password": STAFF_PASSWORD, "otp_token": code}
    )
    assert response.status_code == 200
    assert client.get("/staff/").status_code == 302


@pytest.mark.django_db
def test_a_missing_password_is_a_form_error_not_a_crash(client, make_staff):
    user, _ = make_staff("sup3@example.org", roles=[SUPPORT])
    response = client.post(
        "/admin/login/", {"username": user.email, "password": "", "otp_token": "123456"}
    )
    assert response.status_code == 200
    assert client.get("/staff/").status_code == 302


@pytest.mark.django_db
def test_password_guessing_locks_the_account_out(client, make_staff, settings):
    settings.STAFF_LOGIN_LOCKOUT = (3, 100, 900)
    user, device = make_staff("target@example.org", roles=[SUPPORT])
    for _ in range(3):
        client.post(
            "/admin/login/",
            {"username": user.email, "password": "guess-Guess-123", "otp_token": "000000"},
        )
    response = client.post(
        "/admin/login/",
        {"username": user.email, "password": STAFF_PASSWORD, "otp_token": totp_now(device)},
    )
    assert response.status_code == 200 and b"Too many failed sign-ins" in response.content
    assert client.get("/staff/").status_code == 302
    assert AuditEvent.objects.filter(action="login.locked_out", target=user.email).exists()
