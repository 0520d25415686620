"""Settings come from the environment and fail loudly when a production secret is missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 20 + "0123456789abcdefghijklmnop"


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "utility.settings",
        "DATA_DIR": str(ROOT / "var"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "AUDIT_KEY", "SMS_GATEWAY_SECRET"])
def test_missing_secret_stops_startup_with_clear_message(missing):
    env = {
        "DEBUG": "false",
        "SECRET_KEY": GOOD_KEY,
        "AUDIT_KEY": GOOD_KEY,
        "SMS_GATEWAY_SECRET": GOOD_KEY,
        "SMS_INGEST_ENABLED": "true",  # the gateway secret is needed where the webhook runs
    }
    del env[missing]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_weak_secret_is_refused():
    result = run_manage(
        "check",
        env={
            "DEBUG": "false",
            "SECRET_KEY": "short",
            "AUDIT_KEY": GOOD_KEY,
            "SMS_GATEWAY_SECRET": GOOD_KEY,
        },
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 32 random characters" in result.stderr


def test_secrets_can_be_read_from_files(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(GOOD_KEY + "\n")  # the trailing newline editors add is ignored
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(len(settings.SECRET_KEY))",
        env={
            "DEBUG": "false",
            "SECRET_KEY_FILE": str(secret_file),
            "AUDIT_KEY": GOOD_KEY,
            "SMS_GATEWAY_SECRET": GOOD_KEY,
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(len(GOOD_KEY))


def test_debug_runs_without_secrets():
    result = run_manage("check", env={"DEBUG": "true"})
    assert result.returncode == 0, result.stderr


def test_deploy_check_is_clean_under_production_settings():
    env = {
        "DEBUG": "false",
        "SECRET_KEY": "p9V-" + "x7Qz" * 12,
        "AUDIT_KEY": GOOD_KEY,
        "ALLOWED_HOSTS": "meters.example.org",
        "SMS_INGEST_ENABLED": "false",  # the customer/staff front end
        "DATABASE_URL": "postgres://portal@db.internal/portal",
    }
    result = run_manage("check", "--deploy", "--fail-level", "DEBUG", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_database_url_selects_the_engine():
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
        env={"DEBUG": "true", "DATABASE_URL": "postgres://u@db.internal:5432/portal"},
    )
    assert result.stdout.strip().splitlines()[-1] == "django.db.backends.postgresql"


def test_without_database_url_the_portal_uses_the_embedded_postgresql():
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['ENGINE'], d['HOST'], d['PORT'])",
        env={"DEBUG": "true"},
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last == "django.db.backends.postgresql 127.0.0.1 54320", result.stderr


def test_a_database_url_that_is_not_postgresql_stops_startup():
    result = run_manage("check", env={"DEBUG": "true", "DATABASE_URL": "sqlite:///var/x.db"})
    assert result.returncode != 0
    assert "DATABASE_URL must name a PostgreSQL database" in result.stderr
