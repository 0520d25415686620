"""Locust users for bench/bench_portal_load.py (not run on its own).

Each simulated customer is one of the signed-in customers the benchmark prepared (read from
the JSON file named by BENCH_PORTAL_USERS): a session cookie, a personal API token and their
meter's number.

`PortalCustomer` behaves as a person at a browser: opens the dashboard (the page; on the first
visit the page's static files, which the browser then keeps, as their hashed names let it; then
the three chart requests at once, as dashboard.js sends them) and reads it for 5-30 s before
the next view (mostly the dashboard again, sometimes the retention or the data-sharing page);
the customers arrive spread over the first 30 s.
`PortalCustomerSaturating` does the same without reading: as many views as the server allows,
which measures the throughput. `ApiClient` reads usage with its token every 1-2 s (inside the
token's 120 requests/min); `ApiClientSaturating` without pause (the benchmark lifts the token
throttle for it).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading

import gevent
from locust import HttpUser, between, constant, task

_customers = json.loads(open(os.environ["BENCH_PORTAL_USERS"]).read())  # noqa: SIM115
_next = itertools.count()
_lock = threading.Lock()
STATIC = re.compile(rb'(?:src|href)="(/static/[^"]+)"')
CHARTS = (("hour", "hourly"), ("day", "daily"), ("month", "monthly"))


def _customer() -> dict[str, str]:
    with _lock:
        return _customers[next(_next) % len(_customers)]


def get(user: HttpUser, url: str, name: str) -> bytes:
    """A GET that counts only a 200 as served: a redirect to the login page is a failure."""
    with user.client.get(
        url, headers=user.headers, name=name, allow_redirects=False, catch_response=True
    ) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}")
        return response.content or b""


class PortalCustomer(HttpUser):
    wait_time = between(5, 30)

    def on_start(self) -> None:
        me = _customer()
        self.number = me["number"]
        # Sent as a header: the cookie is __Host- (Secure) and this load runs over loopback HTTP.
        self.headers = {"Cookie": f"{me['cookie_name']}={me['session']}"}
        self.cached_static: set[bytes] = set()
        self.arrive()

    def arrive(self) -> None:
        """Customers do not all sign in in the same second: each arrives within one reading
        time of the start."""
        gevent.sleep(random.uniform(0, 30))

    @task(8)
    def dashboard(self) -> None:
        base = f"/portal/meters/{self.number}/"
        page = get(self, base, "dashboard page")
        new = set(STATIC.findall(page)) - self.cached_static
        for path in sorted(new):
            get(self, path.decode(), "static file (first visit)")
        self.cached_static |= new
        gevent.joinall(
            [
                gevent.spawn(get, self, f"{base}usage.json?resolution={r}", f"{name} JSON")
                for r, name in CHARTS
            ]
        )

    @task(1)
    def retention(self) -> None:
        get(self, "/portal/retention/", "retention page")

    @task(1)
    def data_sharing(self) -> None:
        get(self, "/portal/access/", "data sharing page")


class PortalCustomerSaturating(PortalCustomer):
    wait_time = constant(0)

    def arrive(self) -> None:
        pass


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


class ApiClientSaturating(ApiClient):
    wait_time = constant(0)
