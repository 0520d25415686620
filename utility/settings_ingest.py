"""Settings for the gateway-facing ingest service (deploy/portal-ingest.service): the same
configuration as the portal, serving only the SMS gateway's endpoints and /healthz.

It answers one kind of request, from one machine (the gateway, S9), many times a second: no
sessions, users, CSRF, templates or static files are involved, so their middleware is left
out, and so are the portal's pages. It holds no device key: verification runs on the sms
workers.
"""

from .settings import *  # noqa: F403

ROOT_URLCONF = "utility.urls_ingest"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Required by allauth at start-up (an installed app); it does nothing on these URLs.
    "allauth.account.middleware.AccountMiddleware",
]
# The webhook's one statement is its own health check: on a broken connection it fails, the
# gateway gets a 503 and retries, and Django drops the connection. A SELECT 1 before every
# request would cost a round trip per message.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
