"""The Celery app: Redis broker, routes and beat schedule come from Django settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "utility.settings")

app = Celery("utility")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
