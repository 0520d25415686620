"""Helpers for tests that start real processes of the portal (not used by the portal itself)."""

from __future__ import annotations


def current_database_url() -> str:
    """The URL of the database this (pytest-django) process is connected to, so a subprocess
    (gunicorn, a Celery worker) sees the same rows."""
    from django.db import connection

    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    user, host = db.get("USER") or "", db.get("HOST") or "localhost"
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"
