"""Scratch PostgreSQL databases and settings for the benchmarks (loopback server, trust auth)."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

# The server the benchmarks create their databases on (the machine's, by default).
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
ADMIN_DSN = SERVER.replace("postgres://", "postgresql://", 1) + "/postgres"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def drop_database(name: str) -> None:
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def recreate_database(name: str) -> None:
    """An empty database `name`, dropping whatever a previous run left."""
    drop_database(name)
    _admin(f"CREATE DATABASE {name}")


def django_environment(db_name: str, **extra: str) -> dict[str, str]:
    """Production-like settings on the scratch database, with throwaway secrets."""
    return {
        "DATABASE_URL": f"{SERVER}/{db_name}",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "AUDIT_KEY": secrets.token_urlsafe(48),
        "SMS_GATEWAY_SECRET": secrets.token_urlsafe(24),
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "utility.settings",
        **extra,
    }


def ingest_environment(
    db_name: str, *, meters: int, outbox: str, redis_url: str = "redis://127.0.0.1:6379/13"
) -> dict[str, str]:
    """`django_environment` for the ingest benchmarks: a fresh throwaway KEK (its private half
    is for the sms workers; drop DEVICE_KEK_PRIVATE_KEYS for the ingest service), caps wide
    enough for `meters` meters, and acks sealed and queued as in production, then written to
    the file `outbox` instead of a gateway."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    kek = X25519PrivateKey.generate()
    return django_environment(
        db_name,
        REDIS_URL=redis_url,
        DEVICE_KEK_PUBLIC_KEY=base64.b64encode(kek.public_key().public_bytes_raw()).decode(),
        DEVICE_KEK_PRIVATE_KEYS=base64.b64encode(kek.private_bytes_raw()).decode(),
        SMS_INGEST_ENABLED="true",
        CELERY_TASK_ALWAYS_EAGER="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CAP_BUNDLES_PER_HOUR=str(10 * meters + 10),
        SMS_OUTBOUND_DAILY_CAP="1000",
        SMS_BACKEND="smsgateway.backends.FileBackend",
        SMS_FILE_BACKEND_PATH=outbox,
    )


@contextmanager
def migrated_django(db_name: str, *, fresh: bool = True, keep: bool = False) -> Iterator[None]:
    """Django set up on the scratch database (its settings already in the environment),
    migrated and with hashed static files as deployed; the database is made empty first unless
    `fresh` is off, and dropped at the end unless `keep` (or a reused one)."""
    if fresh:
        recreate_database(db_name)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if fresh and not keep:
            drop_database(db_name)
