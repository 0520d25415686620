"""Flow 4 in a real browser: sign up with the meter number, confirm the e-mail, type the code the
meter shows, set a password, sign in and see the usage charts drawn.

Headless Chromium from Debian (`apt-get install chromium`) driven by Playwright for Python (no
`playwright install`: we launch the system browser). The app runs in pytest-django's live server;
the e-mail is read from Django's locmem outbox and the meter code by opening the downlink frame
with the meter's keys, as the meter would. Screenshots go to e2e/artifacts/.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from testing.customers import (
    CUSTOMER_PASSWORD,
    clear_customer_limits,
    display_code,
    heard_from,
    links_in_mail,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

# The meters made here get keys under a KEK of each test's own.
pytestmark = pytest.mark.usefixtures("kek")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"signup-{name}.png"), full_page=True)


def wait_for(page, pattern: str, name: str) -> None:
    """Wait for navigation to `pattern`; on failure keep a screenshot of where we are."""
    try:
        page.wait_for_url(pattern, timeout=15_000)
    except Exception:
        shot(page, f"failed-{name}")
        raise AssertionError(f"expected {pattern}, still at {page.url}") from None


def put_history(meter, hours: int) -> None:
    """Hourly readings for the `hours` before the meter's own report (which ends at the current
    hour at 1,000,000 Wh), with a 3-hour gap that the charts show as estimated."""
    from readings.services import datetime_to_hour, store_readings

    last = datetime_to_hour(timezone.now()) - 3  # the report covers the three hours after
    rows = [
        (last - i, 1_000_000 - 450 - i * 420 - (i % 24) * 15)
        for i in range(hours)
        if not 30 <= i < 33
    ]
    store_readings(meter.pk, sorted(rows), received_at=timezone.now())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_signup_confirm_claim_password_login_dashboard(
    browser_page,
    live_server,
    settings,
    test_meter,
    post_sms,
):

    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
    # The live server serves static files by name from the finders, not hashed from a manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    page = browser_page
    meter = test_meter()
    heard_from(meter, post_sms)
    clear_customer_limits()
    email = f"browser-{secrets.token_hex(4)}@example.com"
    number = meter.meter.number

    # 1. Sign up with the number as printed on the sticker (groups of five).
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=meter_number]", " ".join(number[i : i + 5] for i in range(0, 25, 5)))
    shot(page, "1-signup")
    page.click("main form button[type=submit]")
    wait_for(page, "**/accounts/confirm-email/", "signup")
    shot(page, "2-check-email")

    # 2. Confirm the address with the link from the e-mail.
    (link,) = [x for x in links_in_mail(email) if "/confirm-email/" in x]
    page.goto(live_server.url + "/" + link.split("://", 1)[1].split("/", 1)[1])
    page.click("main form button[type=submit]")
    wait_for(page, "**/accounts/claim/", "confirm")

    # 3. Type the code the meter shows on its display.
    code = display_code(meter)
    assert code, "no code was sent to the meter"
    assert page.input_value("#id_code-meter_number") == number
    page.fill("#id_code-code", code)
    shot(page, "3-claim")
    page.click("#claim-code-form button[type=submit]")
    wait_for(page, "**/accounts/password/set/", "claim")

    # 4. Set a password (the policy applies).
    page.fill("input[name=password1]", CUSTOMER_PASSWORD)
    page.fill("input[name=password2]", CUSTOMER_PASSWORD)
    shot(page, "4-set-password")
    page.click("main form button[type=submit]")
    wait_for(page, f"**/portal/meters/{number}/", "set-password")

    # Give the meter some history inside this customer's occupancy (normally months of it).
    from accounts.models import MeterOccupancy

    MeterOccupancy.objects.filter(user__email=email).update(
        start=timezone.now() - timedelta(days=4)
    )
    put_history(meter.meter, 72)

    # 5. Sign out, sign in with the new password, and see the charts drawn.
    page.click("nav button.link-button")  # sign out
    page.wait_for_load_state()
    if "/accounts/logout/" in page.url:
        page.click("main form button[type=submit]")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", CUSTOMER_PASSWORD)
    page.click("main form button[type=submit]")
    wait_for(page, f"**/portal/meters/{number}/", "login")
    page.wait_for_selector("canvas#chart-month[data-drawn]", timeout=15_000)
    page.wait_for_selector("canvas#chart-hour[data-drawn]", timeout=15_000)
    page.wait_for_selector("canvas#chart-day[data-drawn]", timeout=15_000)
    shot(page, "5-dashboard")

    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll('canvas.usage-chart')).map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) painted++; }
            return {id: c.id, state: c.dataset.drawn, width: c.width, painted};
        })"""
    )
    assert [c["state"] for c in drawn] == ["true", "true", "true"], drawn
    assert all(c["width"] > 300 and c["painted"] > 2000 for c in drawn), drawn
    assert "kWh" in page.inner_text("#current-reading")
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_api_docs_render_from_our_own_static_files(browser_page, live_server, settings):
    """Swagger UI comes from drf-spectacular-sidecar's static files: the CSP allows no CDN."""
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    page = browser_page
    external: list[str] = []
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)
    shot(page, "6-api-docs")
    text = page.inner_text("#swagger-ui")
    assert "/api/v1/meters/{number}/usage/" in text
    assert not [u for u in external if not u.startswith("data:")], external
