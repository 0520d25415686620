"""Locust users for bench/bench_portal_load.py (not run on its own).

Each simulated customer is one of the signed-in customers the benchmark prepared (read from
the JSON file named by BENCH_PORTAL_USERS): a session cookie, a personal API token and their
meter's number. `PortalCustomer` opens the dashboard as a browser does (the page, then its
three chart requests) and reads for a moment; `ApiClient` reads usage through the API with its
token, at a pace inside the token rate limit.
"""

from __future__ import annotations

import itertools
import json
import os
import threading

from locust import HttpUser, between, task

_customers = json.loads(open(os.environ["BENCH_PORTAL_USERS"]).read())  # noqa: SIM115
_next = itertools.count()
_lock = threading.Lock()


def _customer() -> dict[str, str]:
    with _lock:
        return _customers[next(_next) % len(_customers)]


def get(user: HttpUser, url: str, name: str) -> None:
    """A GET that counts only a 200 as served: a redirect to the login page is a failure."""
    with user.client.get(
        url, headers=user.headers, name=name, allow_redirects=False, catch_response=True
    ) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}")


class PortalCustomer(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        me = _customer()
        self.number = me["number"]
        # Sent as a header: the cookie is __Host- (Secure) and this load runs over loopback HTTP.
        self.headers = {"Cookie": f"{me['cookie_name']}={me['session']}"}

    @task
    def dashboard(self) -> None:
        base = f"/portal/meters/{self.number}/"
        get(self, base, "dashboard page")
        for resolution, name in (("hour", "hourly"), ("day", "daily"), ("month", "monthly")):
            get(self, f"{base}usage.json?resolution={resolution}", f"{name} JSON")


class ApiClient(HttpUser):
    wait_time = between(1, 2)  # under the 120 requests/min per token of the API's throttle

    def on_start(self) -> None:
        me = _customer()
        self.number = me["number"]
        self.headers = {"Authorization": f"Bearer {me['token']}"}

    @task(3)
    def daily(self) -> None:
        get(self, f"/api/v1/meters/{self.number}/usage/?resolution=day", "API usage, daily")

    @task(1)
    def hourly(self) -> None:
        get(self, f"/api/v1/meters/{self.number}/usage/?resolution=hour", "API usage, hourly")
