"""The portal's and API's usage figures per meter in the shared cache (Redis).

An entry is a pure function of its key: the meter, the period of it the viewer may see (two
occupants of one meter share an entry only when they see the same period), the question asked
(resolution and window, or the hour of the comparisons) and the meter's data generation, which a
reader takes before it reads the database; an entry written under another generation than the
current one is never returned.

Storing readings for a meter (`settle_meters`, inside the storing transaction) replaces its
generation with a "settling" mark for READINGS_USAGE_CACHE_SETTLE_SECONDS: reads meanwhile are
computed and not kept, and the first read after it starts a new generation from what was
committed by then. No callback after the commit is needed, so the ingest's transaction stays as
it is; the settling time must outlast any transaction that stores readings (a few seconds at
most), or a read in between could keep the figures from before it until the entry's timeout.
Any cache failure is logged and the figures computed, never shown stale or refused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

import redis
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from .conf import setting

if TYPE_CHECKING:
    from .selectors import Access

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The cached values' layout: change it and every old entry is ignored.
FORMAT = 1
# Django's Redis cache stores an int as its digits (anything else pickled), so this mark can be
# written by a plain SET and still reads back through the cache as 0; generations are strings.
SETTLING = 0
# The mark as a pickled string, its earlier form: read as settling too, so marks written just
# before an upgrade keep their meaning until they expire (one settle period).
_SETTLING_MARKS = (SETTLING, "settling")
_ERRORS = (RedisError, OSError)


def _generation_key(meter_id: int) -> str:
    return f"readings:gen:{meter_id}"


def _entry_key(access: Access, question: tuple) -> str:
    parts = (
        FORMAT,
        access.meter.pk,
        access.start.isoformat(),
        access.end.isoformat() if access.end else "",
        *(p.isoformat() if hasattr(p, "isoformat") else str(p) for p in question),
    )
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"readings:usage:{access.meter.pk}:{digest}"


def _current_generation(key: str, found: str | None, timeout: int) -> str | None:
    if found is not None:
        return found
    # Expiring with the entries: a meter nobody looks at costs no memory for long.
    cache.add(key, secrets.token_hex(8), timeout=timeout)
    return cache.get(key)  # a writer may have marked it settling in between


def cached(access: Access, question: tuple, compute: Callable[[], T]) -> T:
    """`compute()`'s value for this viewer's period of the meter and `question` (a tuple of
    strings, numbers and datetimes), from the cache when the meter's data has not changed."""
    timeout = setting("READINGS_USAGE_CACHE_SECONDS")
    if not timeout:
        return compute()
    generation_key, entry_key = _generation_key(access.meter.pk), _entry_key(access, question)
    try:
        found = cache.get_many([generation_key, entry_key])
        generation = _current_generation(generation_key, found.get(generation_key), timeout)
    except _ERRORS:
        logger.warning("usage cache unavailable; computing", exc_info=True)
        return compute()
    if generation is None or generation in _SETTLING_MARKS:
        return compute()
    entry = found.get(entry_key)
    if entry is not None and entry[0] == generation:
        return entry[1]
    value = compute()  # after taking the generation: see the module's docstring
    try:
        cache.set(entry_key, (generation, value), timeout=timeout)
    except _ERRORS:
        logger.warning("usage cache unavailable; not stored", exc_info=True)
    return value


def settle_meters(meter_ids: Iterable[int]) -> None:
    """End the meters' generations and let their new readings settle: their cached figures
    are not used again. Call in the transaction that stores the readings."""
    names = [_generation_key(meter_id) for meter_id in set(meter_ids)]
    if not names:
        return
    timeout = setting("READINGS_USAGE_CACHE_SETTLE_SECONDS")
    try:
        client = _redis_client()
        if client is None:
            cache.set_many(dict.fromkeys(names, SETTLING), timeout=timeout)
            return
        keys = [cache.make_key(name) for name in names]
        if timeout <= 0:  # settled at once: the next read starts a new generation
            client.delete(*keys)
        else:  # one command for a batch's hundreds of meters, not two per meter
            client.eval(_SETTLE, len(keys), *keys, SETTLING, timeout)
    except Exception:  # whatever the cache does, the readings are stored
        # The entries' timeout bounds how long the portal may show the figures before these.
        logger.error("usage cache: could not end %d meters' figures", len(names), exc_info=True)


_SETTLE = "for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end"


def _redis_client() -> redis.Redis | None:
    """A client of the Redis server behind the default cache, or None where the cache's own
    methods must be used."""
    config = settings.CACHES["default"]
    if config["BACKEND"] != "django.core.cache.backends.redis.RedisCache" or config.get("OPTIONS"):
        return None  # not Redis, or options only Django's own client would apply
    location = config["LOCATION"]
    servers = location.split(",") if isinstance(location, str) else list(location)
    return _client_for(servers[0].strip())  # as Django's client, the first server takes writes


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)
