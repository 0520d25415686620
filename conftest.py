"""Shared test set-up: real services, named staff users with a second factor."""

from __future__ import annotations

import os

import pytest


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    return [
        f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('NAME')} (tests use test_<name>)",
        f"redis: {settings.REDIS_URL or 'not configured'}",
    ]


def pytest_runtest_setup(item):
    """Tests about Redis fail in CI without it, and skip with the reason elsewhere (pytest run
    directly; scripts/test.sh always provides one)."""
    from django.conf import settings

    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        message = "needs Redis (set REDIS_URL, or run ./scripts/test.sh, which starts one)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": required in CI", pytrace=False)
        pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    # Tests about queuing start a real worker and switch this off themselves.
    from utility.celery import app

    app.conf.task_always_eager = True
    yield


@pytest.fixture(autouse=True)
def _celery_join_flag():
    """Eager tasks run while a task is running switch Celery's process-wide "inside a task"
    flag on and back; two threads doing it at once (the concurrent drain tests) can leave it
    on, and a later test's `result.get()` would refuse. This process is never a worker."""
    yield
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Rate-limit and lockout counters live in the cache (Redis in CI): each test starts clean.
    (Skipped when the meter agent's tests run on their own, without Django.)"""
    if request.config.pluginmanager.hasplugin("django"):
        from django.core.cache import cache

        cache.clear()
    yield


@pytest.fixture
def make_staff(db):
    """make_staff(email, roles=[...], superuser=False) -> (user, totp_device)."""
    from accounts.services import create_staff_user
    from accounts.testing import STAFF_PASSWORD

    def make(email: str, roles: list[str] | None = None, superuser: bool = False):
        return create_staff_user(
            email=email,
            password=STAFF_PASSWORD,
            role_names=roles or [],
            by="test",
            superuser=superuser,
        )

    return make


@pytest.fixture
def verified_client(client):
    """verified_client(user, device) -> the test client, signed in through the staff login."""

    from accounts.testing import STAFF_PASSWORD, totp_now

    def sign_in(user, device):
        response = client.post(
            "/admin/login/",
            {"username": user.email, "password": STAFF_PASSWORD, "otp_token": totp_now(device)},
        )
        assert response.status_code == 302, response.content[:500]
        return client

    return sign_in
