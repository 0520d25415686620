#!/usr/bin/env bash
# Runs every check and the whole test suite on PostgreSQL and Redis.
#   ./scripts/test.sh [pytest arguments]
# DATABASE_URL and REDIS_URL default to the local servers. In CI (CI=true) a missing server is an
# error; on a developer machine the suite falls back to SQLite / no Redis and the tests that need
# the real server are skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv requirements-dev.txt
./scripts/system-deps.sh
PY=.venv/bin/python

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
for service in postgres redis; do
    url_var=$([ "$service" = postgres ] && echo DATABASE_URL || echo REDIS_URL)
    if ! $PY scripts/probe.py "$service" "${!url_var}"; then
        if [ "${CI:-}" = "true" ]; then
            echo "ERROR: $service is required in CI (${!url_var})." >&2
            exit 1
        fi
        echo "WARNING: no $service; tests that need it will be skipped." >&2
        unset "$url_var"
    fi
done

# Production-like settings, with throwaway secrets for this run.
export DEBUG=false
export SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(48))')"
export AUDIT_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(48))')"
export SMS_GATEWAY_SECRET="$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')"
export SECURE_SSL_REDIRECT=false
export SMS_INGEST_ENABLED=true
export CELERY_TASK_ALWAYS_EAGER=true
# A throwaway key-encryption key for meter keys; this process acts as an ingest worker too.
eval "$($PY manage.py generate_kek --env | sed 's/^/export /')"
export STATIC_ROOT="${STATIC_ROOT:-$PWD/var/test-static}"

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> migrations are up to date"
$PY manage.py makemigrations --check --dry-run
echo "==> collectstatic"
$PY manage.py collectstatic --noinput --verbosity 0
echo "==> pytest"
$PY -m pytest "$@"
