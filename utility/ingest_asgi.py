"""ASGI entry point of the ingest service (deploy/portal-ingest.service): the gateway's
inbound route on the event loop, the rest through Django with the ingest settings.

    gunicorn -c deploy/gunicorn_ingest.conf.py utility.ingest_asgi:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "utility.settings_ingest")
django_application = get_asgi_application()

from smsgateway.asgi import IngestApplication  # noqa: E402 - needs the apps loaded first

application = IngestApplication(django_application)
