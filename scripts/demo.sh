#!/usr/bin/env bash
# Sets up and starts the portal on the embedded default (SQLite, tasks in-process) with demo
# data, at http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv requirements.txt
PY=.venv/bin/python
export DEBUG=true
mkdir -p var
# The demo's key-encryption key for meter keys, made once and kept beside the database.
if [ ! -f var/demo-kek.env ]; then
    (umask 077 && $PY manage.py generate_kek --env > var/demo-kek.env)
fi
set -a; source var/demo-kek.env; set +a

$PY manage.py migrate --noinput
$PY manage.py seed_demo
echo
echo "Portal: http://127.0.0.1:8000   Staff sign-in: http://127.0.0.1:8000/admin/"
exec $PY manage.py runserver 127.0.0.1:8000
