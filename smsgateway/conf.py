"""Defaults of the SMS gateway's settings; `utility/settings.py` overrides them from the
environment (where the gateway is, its secret and the Kannel addresses are deployment
settings and live there only)."""

# Sending: attempts per outbound message before it is marked failed.
SMS_MAX_ATTEMPTS = 8
# S12: at most this many SMS to one meter in 24 hours; more are held and alarmed.
SMS_OUTBOUND_DAILY_CAP = 12
# Messages one drain task processes before it hands the rest of the queue to a fresh task.
SMS_DRAIN_BATCH = 2000
# Messages verified together and stored in one transaction, set-based.
SMS_BATCH_SIZE = 500
# Seconds between the drains one webhook process queues (0: a drain per message, which eager
# Celery runs inline, as in the tests).
SMS_DRAIN_INTERVAL = 0.05
# Failed authentication / replays from one meter's SIM: this many within the window alert.
SMS_AUTH_FAILURE_REASONS = ("auth_failed", "replay", "stale", "unknown_key")
SMS_AUTH_FAILURE_BURST = 5
SMS_AUTH_FAILURE_WINDOW = 3600
# S7: a meter reports twice a day; silent for longer than this (schedule + grace) alerts.
METER_SILENCE_HOURS = 18
# Key rotation: resend an unanswered REKEY_INIT after this long, at most this often.
REKEY_RESEND_HOURS = 12
REKEY_MAX_ATTEMPTS = 6
