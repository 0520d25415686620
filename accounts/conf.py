"""Defaults of the accounts app's settings; `utility/settings.py` overrides them from the
environment. Read them through `setting(name)`, so a project setting wins over the default."""

from __future__ import annotations

from utility.conf import defaults_reader

# Staff login lockout (S10): failures per account, failures per client address, window (s).
STAFF_LOGIN_LOCKOUT = (5, 20, 900)

# Our customer rate limits, counted in the cache per submitted meter number / e-mail / user:
# name -> (limit, window in seconds). allauth's own limits are ACCOUNT_RATE_LIMITS.
CUSTOMER_LIMITS = {
    "signup_per_meter": (5, 86400),
    "signup_per_email": (3, 3600),
    "reset_per_meter": (5, 3600),
    "claim_per_user": (5, 86400),
    "claim_failures_per_user": (10, 86400),
    "login_failures_alert": (5, 900),
}

# Meter claims: the code shown on the meter's display.
CLAIM_CODE_DIGITS = 8
CLAIM_CODE_TTL_MINUTES = 30
CLAIM_CODE_MAX_ATTEMPTS = 5
# S12: each code is an SMS to that meter; its daily SMS budget must stay free for acks.
CLAIM_CODES_PER_METER_PER_DAY = 3

# The readings API: consents and personal tokens.
API_CONSENT_MAX_MONTHS = 13
API_TOKEN_MAX_DAYS = 365
# A flood of bad API tokens is logged, but audited only this often per minute (and alerted).
API_TOKEN_REJECTIONS_AUDITED_PER_MINUTE = 30


setting = defaults_reader(globals())
