"""Every URL that accepts a POST refuses one without the CSRF token, except the SMS gateway's
webhooks (authenticated by secret and address instead) and the read-only API."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from testing.customers import make_customer

# Not browser forms: the gateway authenticates by shared secret and address (S9); the API
# accepts only GET and answers anything else before a session could matter.
CSRF_EXEMPT = re.compile(r"^/(sms/|api/)")
SAMPLE = {"int": "1", "str": "x", "path": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-0"}


def _urls() -> list[str]:
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns, "")
    urls = []
    for pattern in found:
        path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE.get(m[1] or "str", "x"), pattern)
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "accounts", path)  # admin's app_label groups
        path = path.replace("^", "").replace("$", "").replace("\\Z", "")
        if "(" in path or "?" in path:
            continue  # an admin catch-all regex, covered by its concrete URLs
        urls.append("/" + path)
    return sorted(set(urls))


URLS = _urls()


STAFF_PREFIXES = ("/admin/", "/staff/", "/dispatch/")


def test_the_sweep_sees_the_forms():
    assert {"/accounts/login/", "/accounts/signup/", "/admin/login/"} <= set(URLS)
    assert any(url.startswith("/portal/") for url in URLS)
    assert any(url.startswith(STAFF_PREFIXES[1]) for url in URLS)


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in URLS if not CSRF_EXEMPT.match(u)])
def test_a_signed_in_post_without_the_csrf_token_is_refused(
    client, make_staff, verified_client, settings, url
):
    """Signed in as whoever the URL is for (a superuser with the second factor, or a
    customer), so nothing but the missing token stands between the POST and the view."""
    # A cheap hasher: the sweep signs in once per URL, and the hash is not what it tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if url.startswith(STAFF_PREFIXES):
        verified_client(*make_staff("root@example.org", superuser=True))
    else:
        client.force_login(make_customer("c@example.com"))
    client.handler.enforce_csrf_checks = True
    response = client.post(url, {"x": "1"})
    # 403 from CsrfViewMiddleware; 405 where nothing answers a POST at that URL at all.
    assert response.status_code in (403, 405), (url, response.status_code)
