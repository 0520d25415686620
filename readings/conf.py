"""The readings app's settings and their defaults (a project's settings may override them)."""

from __future__ import annotations

from django.conf import settings

# How long the portal's and API's usage figures for a meter stay cached (seconds). Storing
# readings for the meter ends its entries at once; this only bounds what a missed invalidation
# could leave. 0 turns the cache off.
READINGS_USAGE_CACHE_SECONDS = 3600
# How long after readings are stored for a meter its figures are computed afresh on every read
# and not kept: longer than any transaction that stores readings (readings/usage_cache.py).
READINGS_USAGE_CACHE_SETTLE_SECONDS = 120


def setting(name: str):
    return getattr(settings, name, globals()[name])
