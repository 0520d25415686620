"""The demo in a real browser, as staff: `scripts/demo.sh` starts the whole product (embedded
PostgreSQL, its own Redis, a Celery worker and beat, the simulated fleet, the demo content) on
scratch ports with its own data directory. Each staff role signs in with its password and
authenticator code, opens the operations home and every page it links, and finds real content;
billing starts a billing run and revenue protection a scan from the home, and both are seen to
finish on the worker. Screenshots go to e2e/artifacts/.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django_otp.oath import TOTP

from accounts.management.commands.seed_demo import DEMO_PASSWORD, DEMO_TOTP_HEX

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "e2e" / "artifacts"
START_SECONDS = 600
RUN_SECONDS = 180

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, started as the README says, on its own ports and data; stopped at the end."""
    data = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(data)),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DEMO_DIR": str(data / "var"),
        "DEMO_PORT": str(port),
        "DEMO_POSTGRES_PORT": str(_free_port()),
        "DEMO_REDIS_PORT": str(_free_port()),
    }
    log_path = data / "demo.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["./scripts/demo.sh"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_SECONDS
    try:
        while "Portal: http" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"the demo did not come up:\n{tail}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def chromium(demo):
    from playwright.sync_api import sync_playwright

    from .conftest import CHROMIUM, CHROMIUM_ARGS

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# The code each account last signed in with: the portal refuses a code twice (replay).
_USED_CODES: dict[str, str] = {}


def _code(email: str) -> str:
    """The authenticator code for `email` (every demo staff account has the same secret, each
    its own device); waits for the next one if this account has used the current one."""
    while True:
        totp = TOTP(bytes.fromhex(DEMO_TOTP_HEX), step=30, t0=0, digits=6)
        totp.time = time.time()
        code = f"{totp.token():06d}"
        if _USED_CODES.get(email) != code:
            _USED_CODES[email] = code
            return code
        time.sleep(1)


def _sign_in(chromium, base: str, email: str):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors  # type: ignore[attr-defined]
    page.goto(f"{base}/admin/login/?next=/staff/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.fill("input[name=otp_token]", _code(email))
    page.click("form input[type=submit], form button[type=submit]")
    page.wait_for_url(f"{base}/staff/", timeout=15_000)
    return page


def _visit_every_link(page, base: str, role: str) -> dict[str, str]:
    """Open every page the home links (once each); each must answer 200. Returns their text."""
    links = page.eval_on_selector_all(
        "main a[href^='/']", "els => [...new Set(els.map(e => e.getAttribute('href')))]"
    )
    assert links, f"{role}: the home links nothing"
    texts = {}
    for href in links:
        response = page.goto(base + href)
        assert response is not None and response.status == 200, (role, href, response)
        texts[href] = page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / f"staff-{role}-last-link.png"), full_page=True)
    page.goto(f"{base}/staff/")
    return texts


def _start_and_finish(page, base: str, button: str, role: str) -> str:
    page.goto(f"{base}/staff/")
    page.click(f"text={button}")
    page.wait_for_url(re.compile(r".*/staff/runs/\d+/$"), timeout=15_000)
    # The page refreshes itself every two seconds while the worker carries out the run.
    page.wait_for_selector(
        ".run-state strong:text-matches('Finished|Failed')", timeout=RUN_SECONDS * 1000
    )
    page.screenshot(path=str(ARTIFACTS / f"staff-{role}-run.png"), full_page=True)
    text = page.inner_text("main")
    assert "Status: Finished" in text, text
    # A second start while one runs is refused clearly; once finished, another may start.
    return text


CASE = "may bypass the meter"  # the plain sentence of the demo's revenue-protection case

ROLE_PAGES = {
    # role e-mail: (panels on the home, text that must appear somewhere among linked pages)
    "support": ({"fleet", "billing"}, ["INV-"]),
    "provisioning": ({"fleet"}, []),
    "billing": ({"fleet", "billing"}, ["INV-", "2026"]),
    "revenue-protection": ({"fleet", "revenue-protection"}, [CASE]),
    "field-engineer": (set(), ["Open job"]),
    "security-admin": ({"fleet", "security"}, []),
    "admin": ({"fleet", "billing", "revenue-protection", "security"}, ["INV-", CASE]),
}


@pytest.mark.parametrize("role", sorted(ROLE_PAGES))
def test_each_role_opens_its_home_and_every_linked_page(demo, chromium, role):
    base, _ = demo
    page = _sign_in(chromium, base, f"{role}@example.org")
    panels, expected = ROLE_PAGES[role]
    shown = {
        panel
        for panel in ("fleet", "billing", "revenue-protection", "security")
        if page.locator(f"section#{panel}").count()
    }
    assert shown == panels
    page.screenshot(path=str(ARTIFACTS / f"staff-{role}-home.png"), full_page=True)
    if "fleet" in panels:
        bars = page.eval_on_selector_all(
            "svg.read-rate-chart rect", "rs => rs.map(r => Number(r.getAttribute('height')))"
        )
        assert len(bars) == 30 and max(bars) > 0, bars  # the read-rate chart has data
        assert "Active" in page.inner_text("section#fleet")
    texts = _visit_every_link(page, base, role)
    everything = "\n".join(texts.values())
    for needle in expected:
        assert needle in everything, (role, needle)
    if "revenue-protection" in panels:
        case_pages = [href for href in texts if re.fullmatch(r"/staff/fraud/cases/\d+/", href)]
        assert case_pages, "the home links no case"
        page.goto(base + case_pages[0])
        page.wait_for_selector("canvas", timeout=15_000)  # the evidence chart
    assert not page.console_errors, page.console_errors
    page.context.close()


def test_billing_runs_and_scans_start_from_the_home_and_finish(demo, chromium):
    base, _ = demo
    page = _sign_in(chromium, base, "billing@example.org")
    text = _start_and_finish(page, base, "Start a billing run", "billing")
    # The staff run queued the period's chunks on the workers; the billing run's own page
    # shows it through to the final tally.
    assert "billing_run:" in text and "chunks:" in text, text
    deadline = time.monotonic() + RUN_SECONDS
    while True:  # the seeded months' runs are completed; this one until its tally
        page.goto(f"{base}/staff/billing/runs/")
        runs = page.inner_text("table")
        if "Running" not in runs or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "Running" not in runs and "Completed" in runs, runs
    page.context.close()

    page = _sign_in(chromium, base, "revenue-protection@example.org")
    text = _start_and_finish(page, base, "Start a detector scan", "revenue-protection")
    assert "consumption_drop" in text
    page.context.close()
