"""The Celery app: Redis broker, routes and beat schedule come from Django settings."""

import os

from celery import Celery, Task, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "utility.settings")

app = Celery("utility")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless
# told to reuse them: each task then paid for a new PostgreSQL backend (a fork, the login, the
# catalog caches warmed again for every table it touches), which cost the database more than
# a short drain's own statements. Connections are kept as Django keeps them between requests
# instead (below), and the fixup's own recycling comes only after this many tasks.
app.conf.CELERY_DB_REUSE_MAX = 10_000
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def keep_or_close_database_connections(task: Task | None = None, **kwargs: object) -> None:
    """Around each task, what Django does around each request: a connection past
    CONN_MAX_AGE, broken, or left inside a transaction is closed; a good one is kept. Not for
    an eager task: it runs inside its caller, on the caller's connection."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
