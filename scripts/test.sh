#!/usr/bin/env bash
# Runs every check and the whole test suite on PostgreSQL and Redis.
#   ./scripts/test.sh [pytest arguments]
# DATABASE_URL and REDIS_URL default to the local servers. Where none answers, the script starts
# its own (embedded PostgreSQL and redis-server, data in var/, stopped at the end), so nothing is
# skipped; in CI (CI=true), or when the variable was given, a server that does not answer is an
# error.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv requirements-dev.txt
./scripts/system-deps.sh kannel kannel-extras chromium redis-server
PY=.venv/bin/python

trap stop_embedded EXIT
use_or_start postgres DATABASE_URL postgres://postgres@127.0.0.1:5432/postgres \
    var/test-postgres "${TEST_POSTGRES_PORT:-54331}"
use_or_start redis REDIS_URL redis://127.0.0.1:6379/15 var/test-redis "${TEST_REDIS_PORT:-63791}"

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
.venv/bin/lint-imports
echo "==> migrations are up to date"
$PY manage.py makemigrations --check --dry-run
echo "==> collectstatic"
$PY manage.py collectstatic --noinput --verbosity 0
echo "==> pytest"
$PY -m pytest "$@"
