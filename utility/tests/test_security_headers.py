import pytest

from testing.customers import CUSTOMER_PASSWORD, make_customer


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_base_template_has_no_inline_script_or_style(client):
    html = client.get("/").content.decode()
    assert "<script>" not in html and "<style" not in html and 'style="' not in html
    assert "http://" not in html.replace("http://testserver", "")
    assert 'lang="en"' in html and 'href="#main"' in html


def test_production_cookie_and_transport_settings(settings):
    # The suite runs with DEBUG off, as production does.
    assert settings.DEBUG is False
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SECURE_HSTS_SECONDS >= 31536000
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


@pytest.mark.django_db
def test_every_cookie_is_host_bound_including_flash_messages(client):
    make_customer("cookie@example.com")
    page = client.get("/accounts/login/")
    # allauth flashes "signed in" into the messages cookie on the redirect after login.
    login = client.post(
        "/accounts/login/", {"login": "cookie@example.com", "password": CUSTOMER_PASSWORD}
    )
    assert login.status_code == 302
    cookies = {**page.cookies, **login.cookies}
    assert any("messages" in name for name in cookies), cookies.keys()
    for name, morsel in cookies.items():
        assert name.startswith("__Host-"), name
        assert morsel["secure"] and morsel["path"] == "/" and not morsel["domain"], name
