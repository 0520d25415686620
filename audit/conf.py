"""Defaults of the audit app's settings; `utility/settings.py` overrides them from the
environment. Read them through `setting(name)`, so a project setting wins over the default."""

from __future__ import annotations

from utility.conf import defaults_reader

# Anomaly caps (S12), fleet-wide: action -> (maximum, window in seconds).
ANOMALY_CAPS = {
    "devices.bundle_issued": (200, 3600),
    "devices.rotation_scheduled": (500, 3600),
    "devices.rotation_cancelled": (500, 3600),
    "devices.rotation_restarted": (500, 3600),
    "devices.meter_suspended": (100, 86400),
    "devices.meter_decommissioned": (200, 86400),
    "sms.sent_again": (1000, 3600),
    "accounts.claim_code_sent": (300, 3600),
    "accounts.signup_requested": (1000, 3600),
    "accounts.password_reset_requested": (1000, 3600),
    # Dispatches beyond this in 24 hours wait for a second approver.
    "fraud.dispatched": (50, 86400),
}


setting = defaults_reader(globals())
