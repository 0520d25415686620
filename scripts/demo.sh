#!/usr/bin/env bash
# Sets up and starts the portal on the embedded default (SQLite, tasks in-process) with demo
# data, at http://127.0.0.1:8000, and a fleet of simulated meters: the real meter agent code
# with simulated energy, sending real encrypted frames to the real webhook over HTTP (as the
# SMS gateway would) and receiving the portal's acks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv requirements.txt
PY=.venv/bin/python
export DEBUG=true
mkdir -p var

# Demo secrets, made once and kept beside the database: the key-encryption key for meter keys
# and the webhook's gateway secret.
if [ ! -f var/demo.env ]; then
    (
        umask 077
        $PY -c 'import base64, secrets
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
k = X25519PrivateKey.generate()
print("DEVICE_KEK_PUBLIC_KEY=" + base64.b64encode(k.public_key().public_bytes_raw()).decode())
print("DEVICE_KEK_PRIVATE_KEYS=" + base64.b64encode(k.private_bytes_raw()).decode())
print("SMS_GATEWAY_SECRET=" + secrets.token_urlsafe(24))' > var/demo.env
    )
fi
set -a; source var/demo.env; set +a
# The demo meters report every minute instead of twice a day, so their acks would hit the
# per-meter daily SMS cap (S12) within the hour; the demo raises it.
export SMS_OUTBOUND_DAILY_CAP=5000

$PY manage.py migrate --noinput
$PY manage.py seed_demo
$PY manage.py seed_demo_fleet

$PY manage.py runserver 127.0.0.1:8000 --noreload &
server=$!
fleet=""
trap 'kill $server $fleet 2>/dev/null || true' EXIT INT TERM
$PY - <<'PYEOF'
import time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
PYEOF

$PY -m meteragent.sim.fleet \
    --bundles var/demo-fleet/bundles --data var/demo-fleet/data \
    --webhook http://127.0.0.1:8000/sms/kannel/inbound --secret "$SMS_GATEWAY_SECRET" \
    --outbox var/outbox.jsonl --backfill-hours 48 --send-every-seconds 60 &
fleet=$!

echo
echo "Portal: http://127.0.0.1:8000   Staff sign-in: http://127.0.0.1:8000/admin/"
echo "Simulated meters report every minute; see Admin > SMS gateway > Inbound messages."
wait $server
