"""Defaults of the readings app's settings; `utility/settings.py` overrides them from the
environment. Read them through `setting(name)`, so a project setting wins over the default."""

from __future__ import annotations

from utility.conf import defaults_reader

# Retention of hourly readings (privacy; readings/retention.py, docs/customers.md). Hourly
# readings older than READINGS_HOURLY_RETENTION_DAYS (rounded back to a month start) become
# daily totals and are deleted; the job refuses an age inside the billing window (the runs,
# reruns and estimate corrections) plus the dispute window after an invoice.
READINGS_BILLING_WINDOW_DAYS = 62
READINGS_DISPUTE_WINDOW_DAYS = 365
READINGS_HOURLY_RETENTION_DAYS = 760
# How long the portal's and API's usage figures for a meter stay cached (seconds). Storing
# readings for the meter ends its entries at once; this only bounds what a missed invalidation
# could leave. 0 turns the cache off.
READINGS_USAGE_CACHE_SECONDS = 3600
# How long after readings are stored for a meter its figures are computed afresh on every read
# and not kept: longer than any transaction that stores readings (readings/usage_cache.py).
READINGS_USAGE_CACHE_SETTLE_SECONDS = 120


setting = defaults_reader(globals())
